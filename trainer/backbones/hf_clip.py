"""`hf-clip`: CLIP/SigLIP-style dual towers from Hugging Face (`AutoModel` + `AutoProcessor`).

Visual tokens are vision-tower hidden states, text tokens text-tower hidden states, both from chosen
layers. `encode_text_embeddings` re-runs the text tower from token embeddings so learnable context
vectors can be spliced in; it reproduces `get_text_features` exactly for unmodified embeddings.
The towers were trained into one space, so their cosine is handed to the head as
`TokenFeatures.similarity` (`head.similarity: true`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AutoModel, AutoProcessor

from trainer.backbones.base import DualTowerBackbone, TokenFeatures, full_mask, select_layers
from trainer.backbones.processing import DualTowerProcessor, HFImages
from trainer.backbones.registry import register_backbone


def pooled(output: Tensor | object) -> Tensor:
    """transformers 5 returns a model output from get_*_features; older versions a tensor."""
    return output if isinstance(output, Tensor) else output.pooler_output


@register_backbone("hf-clip")
class HFClip(DualTowerBackbone):
    lora_targets = ("model",)
    provides_similarity = True

    def __init__(
        self,
        model: str,
        vision_layers: Sequence[int] = (-1, -4),
        text_layers: Sequence[int] = (-1, -4),
        max_length: int | None = None,
    ):
        super().__init__()
        self.model = AutoModel.from_pretrained(model)
        processor = AutoProcessor.from_pretrained(model)
        if not hasattr(self.model, "vision_model") or not hasattr(self.model, "text_model"):
            raise ValueError(f"{model!r} is a {type(self.model).__name__}, not a CLIP/SigLIP-style dual-tower model")
        self.vision_layers, self.text_layers = list(vision_layers), list(text_layers)
        config = self.model.config
        self.visual_dims = [config.vision_config.hidden_size] * len(self.vision_layers)
        self.text_dims = [config.text_config.hidden_size] * len(self.text_layers)
        self.processor = DualTowerProcessor(
            image_fn=HFImages(processor.image_processor),
            tokenizer=processor.tokenizer,
            max_length=max_length or config.text_config.max_position_embeddings,
        )

    def forward(self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor) -> TokenFeatures:
        towers = self.model
        vision = towers.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        text = towers.text_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        visual = select_layers(vision.hidden_states, self.vision_layers)
        image_embedding = F.normalize(self._shared(vision.pooler_output, "visual_projection"), dim=-1)
        text_embedding = F.normalize(self._shared(text.pooler_output, "text_projection"), dim=-1)
        return TokenFeatures(
            visual, select_layers(text.hidden_states, self.text_layers), full_mask(visual[0]), attention_mask.bool(),
            similarity=(image_embedding * text_embedding).sum(-1), image_embedding=image_embedding, text_embedding=text_embedding,
        )

    def _shared(self, pooled_output: Tensor, projection: str) -> Tensor:
        """A tower's pooled output in the shared space: CLIP projects it there, SigLIP's towers end in their own heads."""
        layer = getattr(self.model, projection, None)
        return pooled_output if layer is None else layer(pooled_output)

    def encode_image(self, pixel_values: Tensor) -> Tensor:
        return pooled(self.model.get_image_features(pixel_values=pixel_values))

    def text_input_embeddings(self, input_ids: Tensor) -> Tensor:
        return self.model.text_model.embeddings.token_embedding(input_ids)

    def encode_text_embeddings(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        """CLIP: causal tower pooled at the last real token (its EOS), then `text_projection`.
        SigLIP: bidirectional tower pooled at the last position, then its `head`."""
        tower = self.model.text_model
        hidden = tower.embeddings(inputs_embeds=embeds)
        siglip = hasattr(tower, "head")
        length = embeds.shape[1]
        allowed = attention_mask.bool()[:, None, None, :].expand(-1, 1, length, length)
        if not siglip:
            allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=embeds.device).tril()
        mask = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
        mask = mask.masked_fill(~allowed, torch.finfo(hidden.dtype).min)
        last = tower.final_layer_norm(tower.encoder(inputs_embeds=hidden, attention_mask=mask).last_hidden_state)
        if siglip:
            return tower.head(last[:, -1])
        eos = attention_mask.long().sum(1) - 1
        return self.model.text_projection(last[torch.arange(last.shape[0], device=last.device), eos])
