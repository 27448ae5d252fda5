"""peft LoRA for backbone submodules, and saving/loading the adapters in peft's own layout.

Adapters are saved with `PeftModel.save_pretrained` so other tools (merging, serving) can read them;
loading goes through `set_peft_model_state_dict` onto adapters injected from the same options.
"""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from peft.utils import load_peft_weights
from torch import nn

from trainer.config import LoraOptions


def apply_lora(module: nn.Module, options: LoraOptions) -> PeftModel:
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
    )
    try:
        return get_peft_model(module, config)
    except ValueError as exc:
        raise ValueError(f"LoRA target_modules {options.target_modules} do not match {type(module).__name__}: {exc}") from None


def lora_modules(root: nn.Module) -> dict[str, PeftModel]:
    """Top-level peft wrappers inside `root`, by attribute path."""
    found: dict[str, PeftModel] = {}
    for name, module in root.named_modules():
        if isinstance(module, PeftModel) and not any(name.startswith(prefix + ".") for prefix in found):
            found[name] = module
    return found


def save_adapters(root: nn.Module, directory: Path) -> list[str]:
    names = []
    for name, module in lora_modules(root).items():
        module.save_pretrained(str(directory / name))
        names.append(name)
    return names


def load_adapters(root: nn.Module, directory: Path) -> None:
    modules = lora_modules(root)
    for name, module in modules.items():
        path = directory / name
        if not path.is_dir():
            raise FileNotFoundError(f"checkpoint has no LoRA adapter for {name!r} (expected {path})")
        result = set_peft_model_state_dict(module, load_peft_weights(str(path), device="cpu"))
        if result.unexpected_keys:
            raise ValueError(f"adapter {path} does not match the model: unexpected keys {result.unexpected_keys[:5]}")
