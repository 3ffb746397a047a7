"""Builds the tiny model fixtures under tests/fixtures/ (run where torch + transformers exist: the GPU
machine). For each architecture: a small random model, trained for a few hundred CPU steps on synthetic
token patterns so that its predictions are peaked as a real model's are (see train()), saved as a BF16
checkpoint by transformers; the same weights in
NVFP4 as ModelOpt would export them and as compressed-tensors would, and fp32 logits from transformers for
fixed token ids (on the BF16 weights, and on the dequantized NVFP4 weights) for later issues.

MoE experts are written in the per-expert layout that published checkpoints use
(`mlp.experts.E.{gate,up,down}_proj`), whatever layout the installed transformers keeps in memory; the
script proves the layout by loading it back and comparing logits.

usage: python3 tools/make_fixtures.py OUT_DIR
"""

import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
import nvfp4_reference as ref  # noqa: E402

# tokens2 is long: past llama3 rope's original context (64), many times Gemma3's sliding window (4), and
# across several KV pages.
TOKENS = [[1, 17, 42, 99, 3, 200, 7, 64, 128, 5, 11, 250, 33, 77, 19, 2],
          [2, 9, 9, 9, 100, 101, 102, 30],
          [(i * 37 + 11) % 256 for i in range(96)]]
CALIBRATION = [list(range(3, 67)), list(range(100, 164))]

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, max_position_embeddings=512)


def build(arch):
    torch.manual_seed({"llama": 1, "qwen3": 2, "qwen3_moe": 3, "gemma3_text": 4, "gemma3": 5}[arch])
    # GQA ratios: llama 4 (8 heads over 2), qwen3 1 (4 over 4), the others 2. qwen3 and gemma3 tie the
    # embeddings; qwen3_moe has a dense first layer (mlp_only_layers).
    if arch == "llama":
        cfg = transformers.LlamaConfig(**dict(COMMON, num_attention_heads=8), num_hidden_layers=2, rms_norm_eps=1e-5, rope_theta=500000.0,
                                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 64},
                                       tie_word_embeddings=False)
        model = transformers.LlamaForCausalLM(cfg)
    elif arch == "qwen3":
        cfg = transformers.Qwen3Config(**dict(COMMON, num_key_value_heads=4), num_hidden_layers=2, rms_norm_eps=1e-6,
                                       rope_theta=1000000.0, tie_word_embeddings=True)
        model = transformers.Qwen3ForCausalLM(cfg)
    elif arch == "qwen3_moe":
        cfg = transformers.Qwen3MoeConfig(**COMMON, num_hidden_layers=3, num_experts=4, num_experts_per_tok=2,
                                          moe_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[0],
                                          norm_topk_prob=True, tie_word_embeddings=False)
        model = transformers.Qwen3MoeForCausalLM(cfg)
    elif arch == "gemma3_text":
        cfg = transformers.Gemma3TextConfig(**COMMON, num_hidden_layers=3, query_pre_attn_scalar=24,
                                            sliding_window=4,
                                            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                            tie_word_embeddings=True)
        model = transformers.Gemma3ForCausalLM(cfg)
    elif arch == "gemma3":
        text = transformers.Gemma3TextConfig(**COMMON, num_hidden_layers=3, query_pre_attn_scalar=24,
                                             sliding_window=4,
                                             layer_types=["sliding_attention", "sliding_attention", "full_attention"])
        vision = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                 num_attention_heads=2, image_size=28, patch_size=14)
        cfg = transformers.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                        mm_tokens_per_image=4, boi_token_index=250, eoi_token_index=251,
                                        image_token_index=252)
        model = transformers.Gemma3ForConditionalGeneration(cfg)
    else:
        raise ValueError(arch)
    # Random init of norms is all ones/zeros; perturb every parameter so that a wrong formula shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            elif p.dim() >= 2:
                p.normal_(0.0, 0.08)
    train(model)
    return model.to(torch.bfloat16).eval()


def training_batch(gen, batch, length, vocab):
    """Sequences a small model can learn: arithmetic progressions mod vocab (steps as in TOKENS[2]) and
    copies of a random segment (which need attention over earlier positions)."""
    rows = []
    for _ in range(batch):
        if torch.rand((), generator=gen) < 0.7:
            step = [1, 2, 3, 5, 37, 101][int(torch.randint(0, 6, (), generator=gen))]
            start = int(torch.randint(0, vocab, (), generator=gen))
            rows.append([(start + i * step) % vocab for i in range(length)])
        else:
            seg = torch.randint(0, vocab, (int(torch.randint(4, 17, (), generator=gen)),), generator=gen).tolist()
            rows.append((seg * (length // len(seg) + 1))[:length])
    return torch.tensor(rows)


def train(model, steps=300):
    """A few hundred CPU steps so that next-token distributions are peaked, as in real models. With untrained
    weights the top-1 token of a 256-way random softmax is decided by margins (~0.01) smaller than any 8-bit
    KV cache's noise, which would make the top-1 criterion of the golden tests a coin toss."""
    torch.use_deterministic_algorithms(True)  # CPU training: the same fixtures on every run
    gen = torch.Generator().manual_seed(1234)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(steps):
        ids = training_batch(gen, 32, 64, model.config.get_text_config().vocab_size)
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  train step {step} loss {loss.item():.3f}", flush=True)
    torch.use_deterministic_algorithms(False)
    model.eval()


def split_experts(state):
    """Fused in-memory experts ([E, 2I, H] gate_up, [E, H, I] down) -> per-expert tensors."""
    out = {}
    for name, t in state.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            base = name[: -len("gate_up_proj")]
            inter = t.shape[1] // 2
            for e in range(t.shape[0]):
                out[f"{base}{e}.gate_proj.weight"] = t[e, :inter].contiguous()
                out[f"{base}{e}.up_proj.weight"] = t[e, inter:].contiguous()
        elif name.endswith("mlp.experts.down_proj"):
            base = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                out[f"{base}{e}.down_proj.weight"] = t[e].contiguous()
        else:
            out[name] = t
    return out


def logits_of(model, tokens):
    with torch.no_grad():
        return model(input_ids=torch.tensor([tokens]), use_cache=False).logits[0].float().contiguous()


def save_bf16(model, out_dir):
    """Saves with transformers, then rewrites the weights in the per-expert layout; returns the state dict and
    the model as transformers loads the original save (the reference for the rewritten one)."""
    model.save_pretrained(out_dir, safe_serialization=True)
    original = type(model).from_pretrained(out_dir, torch_dtype=torch.bfloat16).eval()
    files = [f for f in os.listdir(out_dir) if f.endswith(".safetensors")]
    state = {}
    for f in files:
        state.update(load_file(os.path.join(out_dir, f)))
        os.remove(os.path.join(out_dir, f))
    state = split_experts(state)
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    return state, original


def is_quantized_linear(name, t):
    if t.dim() != 2 or not name.endswith(".weight"):
        return False
    if "vision_tower" in name or "multi_modal_projector" in name or "embed_tokens" in name or "lm_head" in name:
        return False
    if name.endswith("mlp.gate.weight"):  # MoE router stays BF16
        return False
    return "_proj.weight" in name


def fused_group(module):
    """ModelOpt shares weight_scale_2 (and input_scale) across q/k/v and gate/up, experts included."""
    for members in (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj")):
        for m in members:
            if module.endswith("." + m):
                base = module[: -len(m)]
                return [base + x for x in members]
    return [module]


def calibrate(model, modules):
    """Max |input| per Linear over the calibration prompts (ModelOpt's input amax)."""
    amax = {}
    hooks = []
    named = dict(model.named_modules())
    for mod in modules:
        if mod not in named:
            continue

        def hook(_m, inputs, _out, mod=mod):
            amax[mod] = max(amax.get(mod, 0.0), inputs[0].detach().abs().max().float().item())

        hooks.append(named[mod].register_forward_hook(hook))
    for tokens in CALIBRATION:
        logits_of(model, tokens)
    for h in hooks:
        h.remove()
    return amax


def quantize_state(state, fmt, input_amax):
    modules = sorted(n[: -len(".weight")] for n, t in state.items() if is_quantized_linear(n, t))
    out = {n: t for n, t in state.items() if n[: -len(".weight")] not in modules}
    deq = dict(state)
    for mod in modules:
        group = [m for m in fused_group(mod) if m in modules]
        group_amax_native = max(ref.amax(state[m + ".weight"]) for m in group)  # in the weight dtype
        group_amax = group_amax_native.float()
        act_amax = max(input_amax.get(m, 1.0) for m in group)
        w = state[mod + ".weight"].to(DEVICE)
        if fmt == "modelopt":
            # ModelOpt exports run on the GPU: compute where they do (division by 2688 rounds differently).
            ws2 = ref.modelopt_weight_scale_2(group_amax.to(DEVICE))
            packed, scale, ws2 = ref.modelopt_quantize(w, ws2)
            packed, scale, ws2 = packed.cpu(), scale.cpu(), ws2.cpu()
            out[mod + ".weight"] = packed
            out[mod + ".weight_scale"] = scale
            out[mod + ".weight_scale_2"] = ws2
            out[mod + ".input_scale"] = torch.tensor(act_amax / 2688.0, dtype=torch.float32)
        else:
            gs = ref.ct_global_scale(group_amax_native.to(DEVICE))
            packed, scale = ref.ct_quantize(w, gs)
            packed, scale, gs = packed.cpu(), scale.cpu(), gs.cpu()
            ws2 = (1.0 / gs).reshape(())
            out[mod + ".weight_packed"] = packed
            out[mod + ".weight_scale"] = scale
            out[mod + ".weight_global_scale"] = gs.reshape([1])
            out[mod + ".input_global_scale"] = torch.tensor([2688.0 / act_amax], dtype=torch.float32)
        deq[mod + ".weight"] = ref.dequantize(packed, scale, ws2)  # fp32: not exact in bf16
    return out, deq, modules


def add_kv_scales(out, state, fmt):
    for name in list(state):
        if name.endswith("self_attn.k_proj.weight"):
            attn = name[: -len(".k_proj.weight")]
            if fmt == "modelopt":  # max(amax / 448, 1.0): ModelOpt clamps FP8 KV scales at 1.0
                out[attn + ".k_proj.k_scale"] = torch.tensor(1.0, dtype=torch.float32)
                out[attn + ".v_proj.v_scale"] = torch.tensor(1.0, dtype=torch.float32)
            else:  # compressed-tensors: on the attention module, [1], model dtype
                out[attn + ".k_scale"] = torch.tensor([0.0125], dtype=torch.bfloat16)
                out[attn + ".v_scale"] = torch.tensor([0.0100], dtype=torch.bfloat16)


def exclude_list(arch):
    ex = ["lm_head"]
    if arch == "qwen3_moe":
        ex.append("model.layers.*.mlp.gate")
    if arch == "gemma3":
        ex += ["*vision_tower*", "*multi_modal_projector*"]
    return ex


def write_quantized(arch, src_dir, out_dir, state, fmt, input_amax):
    os.makedirs(out_dir, exist_ok=True)
    qstate, deq, modules = quantize_state(state, fmt, input_amax)
    add_kv_scales(qstate, state, fmt)
    save_file(qstate, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src_dir, "config.json")) as f:
        config = json.load(f)
    if fmt == "modelopt":
        hf_quant = {"producer": {"name": "modelopt", "version": "0.37.0"},
                    "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                                     "exclude_modules": exclude_list(arch)}}
        with open(os.path.join(out_dir, "hf_quant_config.json"), "w") as f:
            json.dump(hf_quant, f, indent=4)
        config["quantization_config"] = {
            "quant_method": "modelopt", "quant_algo": "NVFP4", "producer": hf_quant["producer"],
            "ignore": exclude_list(arch), "kv_cache_scheme": {"num_bits": 8, "type": "float", "dynamic": False},
            "config_groups": {"group_0": {"targets": ["Linear"],
                                          "weights": {"num_bits": 4, "type": "float", "group_size": 16,
                                                      "dynamic": False},
                                          "input_activations": {"num_bits": 4, "type": "float", "group_size": 16,
                                                                "dynamic": False}}}}
    else:
        ignore = ["lm_head"]
        if arch == "qwen3_moe":
            ignore.append("re:.*mlp.gate$")
        if arch == "gemma3":
            ignore += ["re:.*vision_tower.*", "re:.*multi_modal_projector.*"]
        scheme = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True,
                  "dynamic": False, "observer": "minmax"}
        config["quantization_config"] = {
            "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "version": "0.12.2",
            "quantization_status": "compressed", "ignore": ignore,
            "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True,
                                "dynamic": False},
            "config_groups": {"group_0": {"targets": ["Linear"], "format": "nvfp4-pack-quantized",
                                          "weights": scheme,
                                          "input_activations": dict(scheme, dynamic="local")}}}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(src_dir, extra)):
            shutil.copy(os.path.join(src_dir, extra), out_dir)
    return deq, modules


def load_with_weights(model_cls, bf16_dir, state, tmp_dir):
    """An fp32 model holding `state` (checkpoint names), loaded the way transformers loads checkpoints."""
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    shutil.copy(os.path.join(bf16_dir, "config.json"), tmp_dir)
    save_file({k: v.float().contiguous() for k, v in state.items()}, os.path.join(tmp_dir, "model.safetensors"),
              metadata={"format": "pt"})
    model = model_cls.from_pretrained(tmp_dir, torch_dtype=torch.float32).eval()
    shutil.rmtree(tmp_dir)
    return model


def main(out_root):
    summary = {"transformers": transformers.__version__, "torch": torch.__version__, "device": DEVICE,
               "models": {}}
    for arch in ("llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"):
        model = build(arch)
        root = os.path.join(out_root, arch)
        shutil.rmtree(root, ignore_errors=True)
        bf16_dir = os.path.join(root, "bf16")
        state, original = save_bf16(model, bf16_dir)
        # The per-expert files must load back into the same model: same logits, bit for bit.
        reloaded = type(model).from_pretrained(bf16_dir, torch_dtype=torch.bfloat16).eval()
        for tokens in TOKENS:
            assert torch.equal(logits_of(original, tokens), logits_of(reloaded, tokens)), arch
        fp32 = type(model).from_pretrained(bf16_dir, torch_dtype=torch.float32).eval()
        quant_modules = [n[: -len(".weight")] for n, t in state.items() if is_quantized_linear(n, t)]
        input_amax = calibrate(fp32, quant_modules)
        logits = {f"bf16.tokens{i}": logits_of(fp32, t) for i, t in enumerate(TOKENS)}
        for fmt, dirname in (("modelopt", "nvfp4-modelopt"), ("ct", "nvfp4-ct")):
            deq, modules = write_quantized(arch, bf16_dir, os.path.join(root, dirname), state, fmt, input_amax)
            deq_model = load_with_weights(type(model), bf16_dir, deq, os.path.join(out_root, "tmp-deq"))
            for i, t in enumerate(TOKENS):
                logits[f"{dirname}.tokens{i}"] = logits_of(deq_model, t)
        for i, t in enumerate(TOKENS):
            logits[f"tokens{i}"] = torch.tensor(t, dtype=torch.int64)
        save_file(logits, os.path.join(root, "logits.safetensors"))
        summary["models"][arch] = {"quantized_linears": len(quant_modules), "tensors_bf16": len(state)}
        print(arch, summary["models"][arch], flush=True)
    with open(os.path.join(out_root, "fixtures.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
