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
import threading
import time
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
def _release_freed_heap() -> None:
    """Hand memory that Python and glibc hold but no longer use back to the system, so RSS counts live data.

    glibc serves allocations below its mmap threshold (which it raises up to 32 MiB as big blocks are freed) from a
    heap it keeps after ``free``: a later run would reuse that memory without RSS growing. A fixed threshold of
    64 KiB sends every tensor-sized block to its own mapping, which ``free`` returns at once.
    """
    gc.collect()
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): RSS is then only an upper bound
        pass


def _current_bytes(device: str) -> int:
    """What the device holds now: CUDA's allocated bytes on a GPU, the process's RSS on a CPU."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()
    import psutil

    return psutil.Process().memory_info().rss


class PeakMemory:
    """Peak memory above the starting point while the block runs: CUDA allocations on a GPU, RSS on a CPU.

    On a CPU a thread samples the process's resident set size every millisecond; a peak shorter than that can be
    missed, which for a training step (tens of milliseconds) only concerns the briefest temporaries.
    """

    def __init__(self, device: str = "cpu", interval: float = 0.001):
        self.device, self.interval = device, interval
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        import torch

        _release_freed_heap()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = _current_bytes(self.device)
            return self
        import psutil

        self._process = psutil.Process()
        self.start_bytes = _current_bytes(self.device)
        self._peak = self.start_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self.start_bytes
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_bytes = self._peak - self.start_bytes


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
    is measured by what it leaves resident, not by its peak: reading a checkpoint maps its file into memory and
    converts its dtype, a transient that training never sees again (a bf16 file loaded in fp32 briefly holds
    both copies).
    """
    import torch

    torch.manual_seed(seed)
    if make_optimizer is None:
        make_optimizer = trainer_optimizer
        _trainer_optimizer_settings(1e-4, None)  # imports transformers' Trainer now, not inside the measurement
    _release_freed_heap()
    start = _current_bytes(device)
    model = load_model().to(device)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                 target_modules=list(target_modules), task_type="CAUSAL_LM"))
    elif method != "full":
        raise ValueError(f"measure_training_peak measures 'full' or 'lora', not {method!r}.")
    with PeakMemory(device) as peak:  # starts from the loaded model, transients released
        loaded = peak.start_bytes - start
        model.train()
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(trained)
        ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), device=device)
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # keep the gradients allocated, as during a step
    del model, optimizer, ids, trained
    _release_freed_heap()
    return loaded + peak.peak_bytes
