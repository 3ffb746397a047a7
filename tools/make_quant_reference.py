"""Writes tests/fixtures/quant_reference.safetensors: weight matrices chosen to stress the NVFP4 encoders
(wide dynamic range with e4m3-subnormal and vanishing block scales, zero blocks and rows, values near the
e2m1 ties, fp16 input, large magnitudes) and what tools/nvfp4_reference.py makes of them on the GPU in
ModelOpt's and compressed-tensors' algorithms. The C++ encoders must reproduce every byte.

usage: python3 tools/make_quant_reference.py OUT_FILE
"""

import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import nvfp4_reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def cases():
    g = torch.Generator().manual_seed(1234)
    out = {}
    out["normal"] = (torch.randn(128, 512, generator=g) * 0.02).to(torch.bfloat16)
    wide = torch.randn(64, 512, generator=g) * torch.exp(torch.randn(64, 512, generator=g) * 3.0)
    out["wide_range"] = wide.to(torch.bfloat16)
    zeros = torch.randn(64, 256, generator=g).to(torch.bfloat16)
    zeros[3] = 0
    zeros[:, 16:32] = 0
    zeros[10:20, 100:140] = 0
    out["zero_blocks"] = zeros
    ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0, -6.0])
    scale = 2.0 ** torch.randint(-6, 3, (32, 16, 1), generator=g).float()
    out["near_ties"] = (ties.repeat(32, 16, 1) * scale).reshape(32, 256).to(torch.bfloat16)
    out["fp16"] = torch.randn(32, 512, generator=g).to(torch.float16)
    out["large"] = (torch.randn(32, 256, generator=g) * 100.0).to(torch.bfloat16)
    tiny = torch.randn(16, 256, generator=g) * 1e-4
    tiny[0, 0] = 50.0  # one huge value: most blocks get scales far below e4m3's range
    out["vanishing_blocks"] = tiny.to(torch.bfloat16)
    return out


def main(path):
    tensors = {}
    for name, w in cases().items():
        w_dev = w.to(DEVICE)
        amax = ref.amax(w_dev)
        packed, scale, ws2 = ref.modelopt_quantize(w_dev, ref.modelopt_weight_scale_2(amax))
        gs = ref.ct_global_scale(amax)
        ct_packed, ct_scale = ref.ct_quantize(w_dev, gs)
        tensors[f"{name}.input"] = w
        tensors[f"{name}.modelopt.weight"] = packed.cpu()
        tensors[f"{name}.modelopt.weight_scale"] = scale.cpu()
        tensors[f"{name}.modelopt.weight_scale_2"] = ws2.cpu()
        tensors[f"{name}.ct.weight_packed"] = ct_packed.cpu()
        tensors[f"{name}.ct.weight_scale"] = ct_scale.cpu()
        tensors[f"{name}.ct.weight_global_scale"] = gs.cpu()
        cpu_ws2 = ref.modelopt_weight_scale_2(amax.cpu())
        print(f"{name}: {tuple(w.shape)} {w.dtype} amax {amax.float().item():.6g} ws2 {ws2.item():.9g} "
              f"(cpu {cpu_ws2.item():.9g}) global_scale {gs.item():.9g}", flush=True)
    save_file(tensors, path, metadata={"device": DEVICE, "torch": torch.__version__})


if __name__ == "__main__":
    main(sys.argv[1])
