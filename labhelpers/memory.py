"""Training memory from a model's config (lab 06), and the peak actually measured.

What training holds besides activations, per parameter, with AdamW (two fp32 states, ``m`` and ``v``):

=============  =======================================  ===========================================
method         frozen weights                           trained weights (weight + grad + m + v)
=============  =======================================  ===========================================
full           none                                     every parameter: 4 + 4 + 4 + 4 = 16 bytes
LoRA           every parameter at its load dtype        the adapters only, 16 bytes each
               (4 bytes fp32, 2 bytes fp16/bf16)
QLoRA          linear layers in NF4: 0.5 byte, plus     the adapters only, 16 bytes each
               their quantization constants; the rest
               (embeddings, norms) at 2 bytes
=============  =======================================  ===========================================

Full fine-tuning keeps fp32 weights even with fp16/bf16 autocast (the trainer's mixed precision computes in
half precision but updates fp32 weights), so 16 bytes per parameter holds on a GPU too. peft keeps adapter weights
in fp32 on a half-precision base (``autocast_adapter_dtype=True``). NF4 stores 4 bits per weight and one scale
(``absmax``) per block of 64 weights; with double quantization (``bnb_4bit_use_double_quant=True``) that scale is
8 bits, plus one fp32 constant per 256 blocks (Dettmers et al. 2023, QLoRA, section 3). bitsandbytes leaves the
output head unquantized (transformers keeps ``lm_head`` out of the conversion).

The counts come from the model's config alone: :func:`parameter_counts` builds the model on PyTorch's ``meta``
device, which has shapes but no storage, so a 7B model is counted in a second without downloading it.
"""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass

GIB = 1024**3
ADAMW_BYTES_PER_TRAINED = 4 + 4 + 4 + 4  # weight, gradient, exp_avg, exp_avg_sq, all fp32
NF4_BLOCK = 64
NF4_BYTES_PER_WEIGHT = 0.5 + (8 / NF4_BLOCK + 32 / (NF4_BLOCK * 256)) / 8  # 4-bit code + double-quantized absmax

# Shapes of the 1.5B and 7B members of the lab's model family, from their config.json on the Hub
# (huggingface.co/Qwen/Qwen2.5-1.5B-Instruct, huggingface.co/Qwen/Qwen2.5-7B-Instruct), so the table needs no download.
REFERENCE_CONFIGS = {
    "Qwen/Qwen2.5-1.5B-Instruct": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960,
                                       num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                                       vocab_size=151936, tie_word_embeddings=True),
    "Qwen/Qwen2.5-7B-Instruct": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944,
                                     num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                     vocab_size=152064, tie_word_embeddings=False),
}


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters of one causal LM: all of them, those bitsandbytes quantizes, and LoRA's for given targets."""

    name: str
    total: int
    quantized: int  # weights of the linear layers except the output head
    lora: int  # trained by LoRA of rank r on the target modules

    @property
    def unquantized(self) -> int:
        return self.total - self.quantized


def reference_config(name: str):
    """A ``transformers`` config for a name of :data:`REFERENCE_CONFIGS`."""
    from transformers import AutoConfig

    if name not in REFERENCE_CONFIGS:
        raise ValueError(f"No stored config for {name!r}; the stored ones are {', '.join(REFERENCE_CONFIGS)}.")
    settings = dict(REFERENCE_CONFIGS[name])
    return AutoConfig.for_model(settings.pop("model_type"), **settings)


def parameter_counts(config, target_modules, r: int, name: str | None = None) -> ParameterCounts:
    """Count a causal LM's parameters from its config, on the meta device (no memory, no download)."""
    import torch
    from transformers import AutoModelForCausalLM

    from .lora import count_lora_parameters, linear_modules, trainable_fraction

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings()
    quantized = sum(m.weight.numel() for m in linear_modules(model).values() if m is not head)
    _, total = trainable_fraction(model)
    return ParameterCounts(name or getattr(config, "name_or_path", "") or config.model_type, total, quantized,
                           count_lora_parameters(model, target_modules, r))


def training_bytes(counts: ParameterCounts, method: str, base_bytes: float = 2.0) -> dict[str, float]:
    """Bytes held by weights and optimizer for ``method`` (``"full"``, ``"lora"``, ``"qlora"``), activations excluded.

    ``base_bytes`` is the size of one frozen weight in LoRA: 4 for a model loaded in fp32 (a CPU), 2 in fp16/bf16.
    """
    if method == "full":
        frozen, trained = 0.0, counts.total * ADAMW_BYTES_PER_TRAINED
    elif method == "lora":
        frozen, trained = counts.total * base_bytes, counts.lora * ADAMW_BYTES_PER_TRAINED
    elif method == "qlora":
        frozen = counts.quantized * NF4_BYTES_PER_WEIGHT + counts.unquantized * 2.0
        trained = counts.lora * ADAMW_BYTES_PER_TRAINED
    else:
        raise ValueError(f"Unknown method {method!r}; choose 'full', 'lora' or 'qlora'.")
    return {"frozen": frozen, "trained": trained, "total": frozen + trained,
            "per_parameter": (frozen + trained) / counts.total}


def memory_table(counts: list[ParameterCounts], base_bytes: float = 2.0):
    """A DataFrame: parameters, LoRA's trained share, and GiB for full fine-tuning, LoRA and QLoRA, per model."""
    import pandas as pd

    rows = []
    for c in counts:
        row = {"model": c.name, "parameters (M)": round(c.total / 1e6, 1),
               "LoRA trains (%)": round(100 * c.lora / c.total, 3)}
        for method, label in (("full", "full FT"), ("lora", "LoRA"), ("qlora", "QLoRA")):
            estimate = training_bytes(c, method, base_bytes)
            row[f"{label} GiB"] = round(estimate["total"] / GIB, 3)
            row[f"{label} B/param"] = round(estimate["per_parameter"], 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------
def _storages(tensors) -> dict[int, object]:
    """The distinct storages behind some tensors, by address (a view and its base share one)."""
    import torch

    found = {}
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            if storage.nbytes():
                found[storage.data_ptr()] = storage
    return found


def _model_bytes(model) -> int:
    """Bytes of a model's parameters and buffers, each storage counted once (tied weights share one)."""
    return sum(s.nbytes() for s in _storages([*model.parameters(), *model.buffers()]).values())


def _tensor_bytes_tracker():
    """A ``TorchDispatchMode`` that keeps the bytes of the tensors its operations created and are still alive.

    Every operation PyTorch runs in the block passes through ``__torch_dispatch__``. An output whose storage is not
    one of the inputs' (an in-place update or a view allocates nothing) is a new allocation; a weak reference to its
    storage subtracts its size when the storage is freed. This is what ``torch.cuda.memory_allocated`` counts on a
    GPU, without the caching allocator's 512-byte rounding, and unlike the process's resident memory it does not
    depend on what the allocator or other processes on the machine do.
    """
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class TensorBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = self.peak = 0
            self._sizes: dict[int, int] = {}
            self._refs: dict[int, weakref.ref] = {}

        def _freed(self, address: int, ref) -> None:
            if self._refs.get(address) is ref:
                self.live -= self._sizes.pop(address)
                del self._refs[address]

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = _storages(tree_leaves((args, kwargs)))
            for address, storage in _storages(tree_leaves(out)).items():
                size = storage.nbytes()
                if address in self._sizes:  # a tracked storage resized in place
                    self.live += size - self._sizes[address]
                    self._sizes[address] = size
                elif address not in inputs:
                    ref = weakref.ref(storage, lambda r, a=address: self._freed(a, r))
                    self._sizes[address], self._refs[address] = size, ref
                    self.live += size
            self.peak = max(self.peak, self.live)
            return out

    return TensorBytes()


class PeakMemory:
    """Peak memory the block allocates above what existed when it started.

    On a GPU, CUDA's own count (``torch.cuda.max_memory_allocated``). On a CPU, the bytes of the tensors PyTorch
    allocates in the block and keeps alive (:func:`_tensor_bytes_tracker`): the same count, made by watching every
    operation. Memory a kernel uses internally without making a tensor of it is not seen on a CPU.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        self._tracker = _tensor_bytes_tracker()
        self._tracker.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._start
            return
        self._tracker.__exit__(*exc)
        self.peak_bytes = self._tracker.peak


def trainer_optimizer(parameters, learning_rate: float = 1e-4, optim: str | None = None):
    """The optimizer a ``transformers`` Trainer builds for ``parameters``: its class and keyword arguments come from
    ``Trainer.get_optimizer_cls_and_kwargs`` for ``TrainingArguments(optim=optim)`` (``None``: the default).

    The default is ``adamw_torch_fused`` (with torch >= 2.8): ``torch.optim.AdamW(fused=True)``, one kernel per
    tensor that updates in place, on a GPU and on a CPU alike. It matters for memory: ``torch.optim.AdamW()``
    without arguments takes its ``foreach`` path on a GPU, which computes the update for all tensors at once and
    holds a temporary of 4 bytes per trained number (20 bytes per parameter at the peak instead of 16).
    """
    optimizer_class, kwargs, weight_decay = _trainer_optimizer_settings(learning_rate, optim)
    return optimizer_class([{"params": list(parameters), "weight_decay": weight_decay}], **dict(kwargs))


@functools.cache
def _trainer_optimizer_settings(learning_rate: float, optim: str | None):
    import tempfile

    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=tempfile.gettempdir(), report_to="none", learning_rate=learning_rate,
                             **({"optim": optim} if optim else {}))
    optimizer_class, kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    return optimizer_class, tuple(kwargs.items()), args.weight_decay


def measure_training_peak(load_model, method: str, *, target_modules=None, r: int = 8, alpha: int = 16,
                          batch_size: int = 2, seq_len: int = 32, steps: int = 3, device: str = "cpu",
                          seed: int = 0, make_optimizer=None) -> int:
    """Peak bytes of a model loaded with ``load_model()`` and trained ``steps`` AdamW steps, above the start.

    A plain loop on one fixed random batch, so that the peak is the model, its gradients, the optimizer states
    and one step's activations, with nothing of a trainer or a dataset in it. The optimizer is the one the
    labs' trainers use (:func:`trainer_optimizer`), unless ``make_optimizer(parameters)`` makes another. Loading
    is counted as what it leaves, the model's parameters and buffers, not by its peak: reading a checkpoint maps
    its file into memory and converts its dtype, a transient that training never sees again (a bf16 file loaded
    in fp32 briefly holds both copies).
    """
    import torch

    torch.manual_seed(seed)
    if make_optimizer is None:
        make_optimizer = trainer_optimizer
        _trainer_optimizer_settings(1e-4, None)  # imports transformers' Trainer now, not inside the measurement
    model = load_model().to(device)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                 target_modules=list(target_modules), task_type="CAUSAL_LM"))
    elif method != "full":
        raise ValueError(f"measure_training_peak measures 'full' or 'lora', not {method!r}.")
    loaded = _model_bytes(model)
    with PeakMemory(device) as peak:
        model.train()
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(trained)
        ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), device=device)
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # keep the gradients allocated, as during a step
    del model, optimizer, ids, trained
    gc.collect()
    return loaded + peak.peak_bytes
