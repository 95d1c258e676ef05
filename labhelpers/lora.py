"""LoRA written out (lab 06): the reference layer the lab's exercise is checked against, and the module names.

A LoRA layer keeps a linear layer's weight ``W`` (``out x in``) frozen and learns a low-rank update::

    y = x W^T + b + (alpha / r) * x A^T B^T        A: r x in,  B: out x r

so it trains ``r * (in + out)`` numbers instead of ``in * out``. ``B`` starts at zero, so the adapted model
starts exactly where the base model is; ``A`` starts like ``nn.Linear``'s own weight (Kaiming-uniform), as in
the LoRA paper's reference code and in ``peft`` (``peft/tuners/lora/layer.py``, ``reset_lora_parameters``).

    layer = LoRALinear(linear, r=8, alpha=16)
    linear_module_names(model)                     # what target_modules may name
    check_target_modules(model, ["q_proj", "v_proj"])
    trainable_parameters_to_float32(trainer.model)  # QLoRA: the adapters back in fp32 after TRL made them bf16
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(x))`` with ``base`` frozen; ``A`` and ``B`` are the only trained weights."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        if r < 1:
            raise ValueError(f"The LoRA rank r must be at least 1, got {r}.")
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.r, self.alpha, self.scaling = r, alpha, alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merged_weight(self) -> torch.Tensor:
        """``W + (alpha / r) * B A``: one plain weight that computes the same function (what merging does)."""
        return self.base.weight + self.scaling * self.lora_B @ self.lora_A

    @classmethod
    def from_peft(cls, peft_layer, adapter: str = "default") -> LoRALinear:
        """A LoRALinear holding a copy of a peft LoRA layer's base weight, ``A``, ``B`` and scaling."""
        base = peft_layer.get_base_layer()
        copy = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None, dtype=base.weight.dtype)
        copy.load_state_dict(base.state_dict())
        layer = cls(copy, r=peft_layer.r[adapter], alpha=peft_layer.lora_alpha[adapter])
        with torch.no_grad():
            layer.lora_A.copy_(peft_layer.lora_A[adapter].weight)
            layer.lora_B.copy_(peft_layer.lora_B[adapter].weight)
        layer.scaling = peft_layer.scaling[adapter]
        return layer


def lora_parameter_count(in_features: int, out_features: int, r: int) -> int:
    """Trained numbers of one LoRA layer: ``A`` (r x in) plus ``B`` (out x r)."""
    return r * (in_features + out_features)


def linear_modules(model: nn.Module) -> dict[str, nn.Linear]:
    """``{full name: module}`` of every ``nn.Linear`` in the model (``model.layers.0.self_attn.q_proj``, ...)."""
    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct last name parts of the model's linear layers: what ``LoraConfig(target_modules=...)`` names."""
    return sorted({name.rsplit(".", 1)[-1] for name in linear_modules(model)})


def check_target_modules(model: nn.Module, target_modules: Iterable[str]) -> list[str]:
    """Return the full names of the linear layers the targets select; raise one ``ValueError`` for a wrong name.

    peft matches a target against the end of each module's name. A name that matches no linear layer would
    otherwise surface as peft's error without the list of names that would have worked.
    """
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if not targets:
        raise ValueError("target_modules is empty; name at least one of the model's linear modules: "
                         f"{', '.join(linear_module_names(model))}.")
    modules = linear_modules(model)
    unknown = [t for t in targets if not any(name == t or name.endswith("." + t) for name in modules)]
    if unknown:
        raise ValueError(
            f"LoRA target module(s) {', '.join(repr(t) for t in unknown)} are not linear modules of "
            f"{type(model).__name__}. Its linear module names are: {', '.join(linear_module_names(model))}. "
            "Set LORA_TARGET_MODULES to some of these.")
    return [name for name in modules if any(name == t or name.endswith("." + t) for t in targets)]


def count_lora_parameters(model: nn.Module, target_modules: Iterable[str], r: int) -> int:
    """How many numbers LoRA of rank ``r`` on ``target_modules`` trains in ``model``, from the layer shapes."""
    modules = linear_modules(model)
    return sum(lora_parameter_count(modules[name].in_features, modules[name].out_features, r)
               for name in check_target_modules(model, target_modules))


def trainable_fraction(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, each shared tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def trainable_dtypes(model: nn.Module) -> dict[str, int]:
    """``{dtype name: numbers}`` of the model's trainable parameters (``{"float32": 45056}``), each tensor once."""
    seen, counts = set(), {}
    for parameter in model.parameters():
        if parameter.requires_grad and id(parameter) not in seen:
            seen.add(id(parameter))
            name = str(parameter.dtype).removeprefix("torch.")
            counts[name] = counts.get(name, 0) + parameter.numel()
    return counts


def trainable_parameters_to_float32(model: nn.Module) -> dict[str, int]:
    """Cast every trainable floating-point parameter to float32, in place; frozen ones are left as they are.

    Call it after creating the trainer and before training. On a 4-bit model (QLoRA), TRL 1.16's ``SFTTrainer``
    casts the trainable LoRA parameters to bf16 whatever the run's precision (``trl/trainer/sft_trainer.py``: "When
    using QLoRA, the PEFT adapter weights are converted to bf16"). Under fp16 mixed precision (a T4) the Trainer's
    gradient scaler then meets bf16 gradients and stops at the first step:
    ``"_amp_foreach_non_finite_check_and_unscale_cuda" not implemented for 'BFloat16'``. Mixed precision expects
    float32 trained weights (it computes in half precision under autocast and updates in float32), which is also
    what peft gives adapters on a half-precision base (``autocast_adapter_dtype=True``) and what the memory formula
    counts (16 bytes per trained number). The optimizer, which ``train()`` creates, then holds the float32 tensors.

    Returns :func:`trainable_dtypes` after the cast.
    """
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.is_floating_point() and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    return trainable_dtypes(model)
