"""The paper's Eq. 3: the semantic confidence map inside SAM's mask decoder.

    I' = softmax(I + beta * Z-Norm(C))

on the mask token in two attention blocks: the second two-way block's image-to-token attention and
the final token-to-image attention. The bias is an argument of the decoder's forward pass
(`predict_masks`), never state on the (possibly shared) model: the same decoder serves the plain
and the steered decode.
"""

from __future__ import annotations

import math

import torch
from segment_anything.modeling.mask_decoder import MaskDecoder
from segment_anything.modeling.transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer
from torch import Tensor

from iclsam.common.znorm import z_norm

MASK_TOKEN = 1  # decoder tokens are [IoU, mask_0 .. mask_3, prompts]: mask_0 is the single-mask output


def decoder_confidence_bias(confidence_grid: Tensor, valid: tuple[int, int], beta: float) -> Tensor:
    """beta * z with z = (C - 0.5) / std(C) on the 64 x 64 token grid (std over the valid, unpadded
    tokens), flattened to the decoder's 4096 image positions (row-major)."""
    vh, vw = valid
    return z_norm(confidence_grid, centre=0.5, spread=confidence_grid[:vh, :vw], scale=beta).flatten()


def biased_attention(attention: Attention, q: Tensor, k: Tensor, v: Tensor, logit_bias: Tensor, side: str) -> Tensor:
    """segment-anything's attention with an additive logit bias on the mask token.

    side="key" (image-to-token attention: image positions attend to tokens): the logit of each image
    position towards the mask token gets `logit_bias[position]`. side="query" (token-to-image
    attention): the mask token's logits towards image position i get `logit_bias[i]`. Adding beta*z
    before the softmax equals multiplying those attention weights by exp(beta*z) and renormalising."""
    if side not in ("key", "query"):
        raise ValueError(f"side must be 'key' or 'query', got {side!r}")
    q = attention._separate_heads(attention.q_proj(q), attention.num_heads)
    k = attention._separate_heads(attention.k_proj(k), attention.num_heads)
    v = attention._separate_heads(attention.v_proj(v), attention.num_heads)
    logits = q @ k.permute(0, 1, 3, 2)  # B x heads x queries x keys
    logits = logits / math.sqrt(q.shape[-1])
    bias = torch.zeros(logits.shape[-2:], dtype=logits.dtype, device=logits.device)
    if side == "key":
        bias[:, MASK_TOKEN] = logit_bias
    else:
        bias[MASK_TOKEN, :] = logit_bias
    weights = torch.softmax(logits + bias, dim=-1)
    return attention.out_proj(attention._recombine_heads(weights @ v))


def _steered_block(
    block: TwoWayAttentionBlock, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor, logit_bias: Tensor
) -> tuple[Tensor, Tensor]:
    """segment-anything's two-way block with Eq. 3 in its image-to-token attention."""
    if block.skip_first_layer_pe:
        queries = block.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + block.self_attn(q=q, k=q, v=queries)
    queries = block.norm1(queries)
    q, k = queries + query_pe, keys + key_pe
    queries = block.norm2(queries + block.cross_attn_token_to_image(q=q, k=k, v=keys))
    queries = block.norm3(queries + block.mlp(queries))
    q, k = queries + query_pe, keys + key_pe
    keys = block.norm4(keys + biased_attention(block.cross_attn_image_to_token, k, q, queries, logit_bias, "key"))
    return queries, keys


def _steered_transformer(
    transformer: TwoWayTransformer,
    image_embedding: Tensor,
    image_pe: Tensor,
    point_embedding: Tensor,
    logit_bias: Tensor,
) -> tuple[Tensor, Tensor]:
    """segment-anything's two-way transformer with Eq. 3 in block 2 and in the final attention."""
    if len(transformer.layers) != 2:
        raise ValueError(f"Eq. 3 is defined for SAM's two-block decoder, this one has {len(transformer.layers)}")
    image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
    image_pe = image_pe.flatten(2).permute(0, 2, 1)
    queries, keys = point_embedding, image_embedding
    queries, keys = transformer.layers[0](queries=queries, keys=keys, query_pe=point_embedding, key_pe=image_pe)
    queries, keys = _steered_block(transformer.layers[1], queries, keys, point_embedding, image_pe, logit_bias)
    q, k = queries + point_embedding, keys + image_pe
    queries = queries + biased_attention(transformer.final_attn_token_to_image, q, k, keys, logit_bias, "query")
    return transformer.norm_final_attn(queries), keys


def predict_masks(
    decoder: MaskDecoder,
    image_embeddings: Tensor,
    image_pe: Tensor,
    sparse_prompt_embeddings: Tensor,
    dense_prompt_embeddings: Tensor,
    logit_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The decoder's single-mask output (low-res logits N x 1 x h x w, IoU N x 1). Without
    `logit_bias` this is segment-anything's own forward; with it (Eq. 3's beta*z over the 4096 grid
    positions, see `decoder_confidence_bias`) the same computation with the two steered attentions."""
    if logit_bias is None:
        return decoder(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings,
            multimask_output=False,
        )
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
    tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
    src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0) + dense_prompt_embeddings
    pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
    b, c, h, w = src.shape
    hs, src = _steered_transformer(decoder.transformer, src, pos_src, tokens, logit_bias)
    mask_tokens_out = hs[:, 1 : 1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).view(b, c, h, w))
    hyper_in = torch.stack(
        [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
    )
    b, c, h, w = upscaled.shape
    masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    iou_pred = decoder.iou_prediction_head(hs[:, 0, :])
    return masks[:, 0:1], iou_pred[:, 0:1]
