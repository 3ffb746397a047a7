"""Independent NVFP4 reference in PyTorch, used to produce the fixtures AdaLLM's C++ quantizer is checked
against (bit for bit). It follows ModelOpt's NVFP4QTensor (modelopt/torch/quantization/qtensor/
nvfp4_tensor.py: get_weights_scaling_factor_2, get_weights_scaling_factor, quantize, _cast_fp4) and
compressed-tensors' NVFP4 path, step by step in torch ops, so that the rounding of every step is torch's
own (fp32 division, `.to(torch.float8_e4m3fn)`) and not AdaLLM's C++ codecs.
"""

import torch

E2M1_BOUNDS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
E2M1_VALUES = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32)
BLOCK = 16


def modelopt_weight_scale_2(amax: torch.Tensor) -> torch.Tensor:
    # get_weights_scaling_factor_2: reduce_amax(input).float() / (6.0 * 448.0)
    return amax.float() / (6.0 * 448.0)


def amax(w: torch.Tensor) -> torch.Tensor:
    return w.abs().amax()


def _cast_fp4(x: torch.Tensor) -> torch.Tensor:
    sign = (x < 0).to(torch.uint8)
    a = x.abs()
    code = torch.searchsorted(E2M1_BOUNDS.to(x.device), a, out_int32=True).to(torch.uint8)
    odd = E2M1_BOUNDS.to(x.device)[[1, 3, 5]]
    code = code + torch.any(a.unsqueeze(-1) == odd, dim=-1).to(torch.uint8)
    return (sign << 3) + code


def modelopt_quantize(w: torch.Tensor, weight_scale_2: torch.Tensor):
    """w: [rows, cols] bf16/fp16 weight; returns (packed u8 [rows, cols/2], scale f8 [rows, cols/16], ws2 f32)."""
    rows, cols = w.shape
    assert cols % BLOCK == 0
    blocks = w.view(rows, cols // BLOCK, BLOCK)
    per_block_amax = blocks.abs().amax(dim=-1).float()
    per_block_scale = per_block_amax / (6.0 * weight_scale_2)
    per_block_scale[per_block_scale == 0] = 1.0
    scale_fp8 = per_block_scale.to(torch.float8_e4m3fn)
    # quantize(): input (bf16) / (scale.float() * wsf2).unsqueeze(-1) promotes to fp32
    scaled = blocks / (scale_fp8.to(torch.float32) * weight_scale_2).unsqueeze(-1)
    q = _cast_fp4(scaled.view(rows, cols))
    packed = (q[..., 1::2] << 4) | q[..., 0::2]
    return packed.contiguous(), scale_fp8.contiguous(), weight_scale_2.float().reshape(())


def dequantize(packed: torch.Tensor, scale_fp8: torch.Tensor, weight_scale_2: torch.Tensor) -> torch.Tensor:
    rows = packed.shape[0]
    cols = packed.shape[1] * 2
    codes = torch.empty(rows, cols, dtype=torch.long, device=packed.device)
    codes[:, 0::2] = (packed & 0x0F).long()
    codes[:, 1::2] = (packed >> 4).long()
    values = E2M1_VALUES.to(packed.device)[codes]
    per_block = scale_fp8.to(torch.float32) * weight_scale_2.float()
    return (values.view(rows, cols // BLOCK, BLOCK) * per_block.unsqueeze(-1)).view(rows, cols)


# ---- compressed-tensors (llm-compressor NVFP4, format nvfp4-pack-quantized) ----
# Steps as in compressed-tensors: quantization/utils/helpers.py (generate_gparam, calculate_qparams),
# quantization/lifecycle/forward.py (_quantize), quantization/quant_args.py (cast_to_fp4),
# compressors/quantized_compressors/fp4_quantized.py (pack_fp4_to_uint8). The observer sees the weight in
# its own dtype (bf16), so the arithmetic before the fp32 promotion happens in bf16, as it does there.

FP8_E4M3_EPS = 0.125  # torch.finfo(torch.float8_e4m3fn).eps


def ct_global_scale(amax_in_weight_dtype: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(amax_in_weight_dtype)
    max_val_pos = torch.max(torch.abs(torch.min(-amax_in_weight_dtype, zero)), torch.abs(torch.max(amax_in_weight_dtype, zero)))
    global_scale = 448.0 * 6.0 / max_val_pos
    return global_scale.to(torch.float32).reshape([1])


def ct_cast_to_fp4(x: torch.Tensor) -> torch.Tensor:
    sign = torch.sign(x)
    x = torch.abs(x)
    x[(x >= 0.0) & (x <= 0.25)] = 0.0
    x[(x > 0.25) & (x < 0.75)] = 0.5
    x[(x >= 0.75) & (x <= 1.25)] = 1.0
    x[(x > 1.25) & (x < 1.75)] = 1.5
    x[(x >= 1.75) & (x <= 2.5)] = 2.0
    x[(x > 2.5) & (x < 3.5)] = 3.0
    x[(x >= 3.5) & (x <= 5.0)] = 4.0
    x[x > 5.0] = 6.0
    return x * sign


def ct_quantize(w: torch.Tensor, global_scale: torch.Tensor):
    """w: [rows, cols] in the model dtype; global_scale: fp32 [1]. Returns (packed u8, scale f8)."""
    rows, cols = w.shape
    blocks = w.view(rows, cols // BLOCK, BLOCK)
    max_val_pos = blocks.abs().amax(dim=-1)                 # observer min/max, weight dtype
    scales = global_scale * (max_val_pos / 6.0)             # bf16 divide, then fp32 product
    scales = torch.clamp(scales, -448.0, 448.0).to(torch.float8_e4m3fn)
    scales = torch.where(scales.to(torch.float32) == 0,
                         torch.tensor(FP8_E4M3_EPS, dtype=torch.float32, device=w.device),
                         scales.to(torch.float32)).to(torch.float8_e4m3fn)
    scale = scales.to(torch.float32) / global_scale          # _quantize: scale / global_scale
    scaled = blocks / scale.unsqueeze(-1)
    scaled = scaled + 0                                      # zero point
    q = ct_cast_to_fp4(torch.clamp(scaled, -6.0, 6.0)).view(rows, cols)
    table = E2M1_VALUES[:8].to(w.device)
    idx = torch.argmin(torch.abs(q.abs().unsqueeze(-1) - table), dim=-1) + (torch.signbit(q).to(torch.long) << 3)
    idx = idx.to(torch.uint8)
    packed = idx[:, 0::2] | (idx[:, 1::2] << 4)
    return packed.contiguous(), scales.contiguous()
