"""Builds the small demo model under models/demo/bf16 (run where torch + transformers + tokenizers exist: the GPU
machine; no network needed). The engine needs a real, trained checkpoint of a supported architecture whose text
output can be judged by eye and whose held-out perplexity is a number worth comparing after `adallm quantize`:
random weights (tests/fixtures) prove the arithmetic, not that NVFP4 keeps a model's quality.

What it makes, all from the Python sources of the machine it runs on: the standard library, then the installed
packages, up to 120 MB (deterministic for one set of installed packages; files whose sha1(relative path) % 50 == 0
are held out):
  OUT_DIR/corpus.json                   file and byte counts of the split
  OUT_DIR/heldout.txt                   held-out files, each after a `# file: <path>` line, at most 120 KB
  OUT_DIR/bf16/                         Qwen3ForCausalLM (6 layers, hidden 256, tied embeddings) in bf16,
                                        config.json, generation_config.json, tokenizer.json (byte-level BPE,
                                        4096 ids, in the Qwen2/Qwen3 form), tokenizer_config.json (ChatML)
  OUT_DIR/demo_train.json               training record: config, steps, losses, held-out perplexity, samples
  OUT_DIR/heldout_logits.safetensors    fp32 logits for the first 64 held-out tokens ("logits": fp32 weights as
                                        trained, "logits_bf16_weights": the shipped bf16 weights computed in fp32)
The training stream mixes raw files with ChatML examples (user: a function's first line, assistant: the
function) so that chat templating has something to show. Training stops at --seconds or after --epochs passes
over the stream, whichever comes first: past a few passes a 6M-parameter model starts memorizing (held-out
loss rising), so the epoch cap usually decides.

usage: python3 tools/make_demo_model.py OUT_DIR [--seconds 300] [--epochs 4]
"""

import argparse
import array
import ast
import copy
import hashlib
import json
import math
import os
import random
import sysconfig
import textwrap
import time
import unicodedata

import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
CHATML = ("{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
          "{%- endif %}")
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__"}
VOCAB, SEQ, BATCH, WARMUP, PEAK_LR = 4096, 512, 64, 200, 2e-3
CHAT_SHARE = 0.25  # of documents; the rest are raw files
MAX_CORPUS_BYTES = 120 * 1024 * 1024
MAX_HELDOUT_BYTES = 120 * 1024  # small enough for a CPU perplexity run in seconds
MAX_CHAT_EXAMPLES = 30000


def source_roots():
    """The standard library, then the installed packages (torch, transformers, numpy, ... on the GPU machine)."""
    paths = sysconfig.get_paths()
    roots = [("stdlib", paths["stdlib"])]
    for key in ("purelib", "platlib"):
        if os.path.isdir(paths[key]) and all(paths[key] != r for _, r in roots):
            roots.append((key, paths[key]))
    return roots


def collect_corpus(out_dir):
    files = []
    for label, root in source_roots():
        skip = SKIP_DIRS if label == "stdlib" else SKIP_DIRS - {"site-packages", "dist-packages"}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in skip)
            files += [(label + "/" + os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"),
                       os.path.join(dirpath, f)) for f in filenames if f.endswith(".py")]
    train, heldout, total = [], [], 0
    for rel, path in sorted(files):
        try:
            if os.path.getsize(path) > 200 * 1024:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        held = int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 50 == 0
        (heldout if held else train).append((rel, text))
        total += len(text.encode())
        if total > MAX_CORPUS_BYTES:
            break
    pieces, size = [], 0
    for rel, text in heldout:  # truncated at a file boundary
        piece = "# file: " + rel + "\n" + text + ("" if text.endswith("\n") else "\n")
        if size + len(piece.encode()) > MAX_HELDOUT_BYTES:
            break
        pieces.append(piece)
        size += len(piece.encode())
    heldout_text = "".join(pieces)
    with open(os.path.join(out_dir, "heldout.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(heldout_text)
    counts = {"roots": dict(source_roots()), "python": sysconfig.get_python_version(), "files_train": len(train),
              "files_heldout": len(heldout), "files_in_heldout_txt": len(pieces),
              "bytes_train": sum(len(t.encode()) for _, t in train),
              "bytes_heldout": sum(len(t.encode()) for _, t in heldout), "bytes_heldout_txt": size}
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:
        json.dump(counts, f, indent=2)
    print("corpus:", counts, flush=True)
    return train, heldout_text


def train_tokenizer(texts):
    tok = Tokenizer(models.BPE(byte_fallback=False))  # no unk: the byte alphabet covers every input
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(s, special=True, normalized=False) for s in SPECIALS]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.add_special_tokens(specials)  # already there after training; makes sure they are marked special
    # Spell the fields the Python constructors do not take as Qwen's files do (they change offsets, not ids).
    data = json.loads(tok.to_str())
    for step in data["pre_tokenizer"]["pretokenizers"]:
        if step["type"] == "ByteLevel":
            step["trim_offsets"] = False
    data["post_processor"].update(add_prefix_space=False, trim_offsets=False, use_regex=False)
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if data["model"].get(key) is None:
            data["model"][key] = ""
    tok = Tokenizer.from_str(json.dumps(data))
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    return tok


def check_tokenizer(tok, heldout_text):
    for s in ["def fibonacci(n):\n    return n", "x = {'a': 1}  # déjà vu 😀\r\n\tpass"]:
        ids = tok.encode(s, add_special_tokens=False).ids
        print("round trip:", repr(s), "->", ids, "->", repr(tok.decode(ids, skip_special_tokens=False)))
    lines = [ln for ln in heldout_text.split("\n") if ln.strip() and unicodedata.normalize("NFC", ln) == ln]
    for ln in random.Random(1).sample(lines, min(500, len(lines))):
        got = tok.decode(tok.encode(ln, add_special_tokens=False).ids, skip_special_tokens=False)
        assert got == ln, (ln, got)
    ids = tok.encode("a<|im_start|>user\nb<|im_end|>\n<|endoftext|>", add_special_tokens=False).ids
    assert ids.count(0) == 1 and ids.count(1) == 1 and ids.count(2) == 1, ids


def check_chat_template(bf16_dir):
    user = [{"role": "user", "content": "def fibonacci(n):"}]
    try:
        hf = transformers.AutoTokenizer.from_pretrained(bf16_dir)
    except Exception as e:  # report it and check the template through the plain fast tokenizer class
        print("AutoTokenizer.from_pretrained failed:", repr(e), flush=True)
        hf = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(bf16_dir, "tokenizer.json"),
                                                  eos_token="<|im_end|>", pad_token="<|endoftext|>")
        hf.chat_template = CHATML
    text = hf.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    want = "<|im_start|>user\ndef fibonacci(n):<|im_end|>\n<|im_start|>assistant\n"
    assert text == want, repr(text)
    print("chat template ok:", type(hf).__name__, repr(text), flush=True)
    return text


def chat_examples(train):
    docs = []
    for rel, text in train:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        nodes = list(tree.body)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                nodes += node.body
        for node in nodes:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not ast.get_docstring(node):
                continue
            seg = ast.get_source_segment(text, node, padded=True)
            if not seg or not 100 <= len(seg) <= 1200:
                continue
            src = textwrap.dedent(seg)
            docs.append("<|im_start|>user\n" + src.split("\n", 1)[0] + "<|im_end|>\n<|im_start|>assistant\n" +
                        src + "<|im_end|>\n<|endoftext|>")
        if len(docs) >= MAX_CHAT_EXAMPLES:
            break
    return docs


def lr_at(step, total):
    if step < WARMUP:
        return PEAK_LR * (step + 1) / WARMUP
    progress = min(1.0, (step - WARMUP) / max(1, total - 1 - WARMUP))
    return PEAK_LR * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def lm_loss(model, window):
    logits = model(input_ids=window[:, :-1], use_cache=False).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))


@torch.no_grad()
def heldout_nll(model, ids):
    total, count = 0.0, 0
    for i in range(0, len(ids), SEQ):
        chunk = torch.tensor(ids[i:i + SEQ], device="cuda")[None]
        if chunk.shape[1] < 2:
            break
        logits = model(input_ids=chunk, use_cache=False).logits.float()[0, :-1]
        total += F.cross_entropy(logits, chunk[0, 1:], reduction="sum").item()
        count += chunk.shape[1] - 1
    return total / count


@torch.no_grad()
def greedy(model, tok, prompt, n=60):
    ids = torch.tensor([tok.encode(prompt, add_special_tokens=False).ids], device="cuda")
    start = ids.shape[1]
    for _ in range(n):  # full recompute each step: 60 tokens of a tiny model, and no generate() defaults
        nxt = model(input_ids=ids, use_cache=False).logits[0, -1].argmax()
        ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        if nxt.item() == 2:
            break
    return tok.decode(ids[0, start:].tolist(), skip_special_tokens=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--epochs", type=float, default=4.0, help="cap on passes over the training stream")
    args = ap.parse_args()
    bf16_dir = os.path.join(args.out_dir, "bf16")
    os.makedirs(bf16_dir, exist_ok=True)
    random.seed(0)
    torch.manual_seed(0)

    train, heldout_text = collect_corpus(args.out_dir)
    tok = train_tokenizer([t for _, t in train])
    check_tokenizer(tok, heldout_text)
    tok.save(os.path.join(bf16_dir, "tokenizer.json"))
    with open(os.path.join(bf16_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "add_bos_token": False, "model_max_length": 1024,
                   "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHATML}, f, indent=2)
    chat_prompt = check_chat_template(bf16_dir)

    chats = chat_examples(train)
    n_chat = min(len(chats), round(len(train) * CHAT_SHARE / (1 - CHAT_SHARE)))
    rng = random.Random(0)
    docs = [t + "<|endoftext|>" for _, t in train] + rng.sample(chats, n_chat)
    rng.shuffle(docs)
    stream = array.array("i")
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        stream.extend(enc.ids)
    data = torch.frombuffer(stream, dtype=torch.int32).to(device="cuda", dtype=torch.long)
    print(f"stream: {len(docs)} documents ({n_chat} chat of {len(chats)} found), {len(stream)} tokens", flush=True)
    heldout_ids = tok.encode(heldout_text, add_special_tokens=False).ids

    cfg = transformers.Qwen3Config(vocab_size=VOCAB, hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                                   max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0,
                                   tie_word_embeddings=True, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    model = transformers.Qwen3ForCausalLM(cfg).cuda().train()
    n_params = sum(p.numel() for p in model.parameters())  # tied: the embedding counts once
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # norms
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=PEAK_LR, betas=(0.9, 0.95), fused=True)
    gen = torch.Generator(device="cuda").manual_seed(1234)
    offsets = torch.arange(SEQ + 1, device="cuda")
    try:
        fwd = torch.compile(model)
    except Exception as e:
        print("torch.compile unavailable:", repr(e), flush=True)
        fwd = model
    compiled = fwd is not model

    def train_step(step, total):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total)
        starts = torch.randint(0, len(data) - SEQ - 1, (BATCH,), device="cuda", generator=gen)
        window = data[starts[:, None] + offsets]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = lm_loss(fwd, window)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    t0 = time.time()
    total, step, loss_sum, loss_n, last_loss, t5, curve = 10 ** 9, 0, 0.0, 0, float("nan"), None, []
    while step < total:
        try:
            loss = train_step(step, total)
        except Exception as e:
            if step > 0 or not compiled:
                raise
            print("torch.compile failed, training eagerly:", repr(e)[:2000], flush=True)
            opt.zero_grad(set_to_none=True)
            fwd, compiled = model, False
            gen.manual_seed(1234)
            continue
        loss_sum, loss_n = loss_sum + loss, loss_n + 1
        step += 1
        if step == 5:
            torch.cuda.synchronize()
            t5 = time.time()
        if step == 20:  # plan the run so that it ends at --seconds and the cosine ends on the last step
            torch.cuda.synchronize()
            per_step = (time.time() - t5) / 15
            by_time = 20 + int((args.seconds - (time.time() - t0)) / per_step)
            by_data = int(args.epochs * len(stream) / (BATCH * SEQ))  # more only memorizes the small corpus
            total = max(WARMUP + 100, min(by_time, by_data))
            print(f"{per_step * 1000:.1f} ms/step (compiled: {compiled}); planning {total} steps "
                  f"({by_time} fit --seconds, {by_data} fit --epochs)", flush=True)
        if step % 100 == 0 or step == total:
            last_loss = (loss_sum / loss_n).item()
            print(f"step {step}/{total} loss {last_loss:.4f} lr {lr_at(step - 1, total):.2e} "
                  f"{time.time() - t0:.0f}s", flush=True)
            loss_sum, loss_n = 0.0, 0
        if step % 250 == 0 or step == total:  # the corpus is small: watch for over-fitting (no dropout, so train mode is fine)
            curve.append([step, heldout_nll(model, heldout_ids)])
            print(f"step {step} held-out loss {curve[-1][1]:.4f}", flush=True)
    torch.cuda.synchronize()
    seconds = time.time() - t0

    model = model.float().eval()
    loss_fp32 = heldout_nll(model, heldout_ids)
    first = torch.tensor(heldout_ids[:64], device="cuda")[None]
    with torch.no_grad():
        logits_fp32 = model(input_ids=first, use_cache=False).logits[0].float().cpu().contiguous()
    rounded = copy.deepcopy(model).to(torch.bfloat16).float()  # the shipped weights, computed in fp32
    loss_rounded = heldout_nll(rounded, heldout_ids)
    with torch.no_grad():
        logits_rounded = rounded(input_ids=first, use_cache=False).logits[0].float().cpu().contiguous()
    del rounded
    save_file({"logits": logits_fp32, "logits_bf16_weights": logits_rounded,
               "tokens": first[0].cpu().to(torch.int64).contiguous()},
              os.path.join(args.out_dir, "heldout_logits.safetensors"))
    print(f"held-out loss {loss_fp32:.4f} ppl {math.exp(loss_fp32):.3f} "
          f"(bf16 weights: loss {loss_rounded:.4f} ppl {math.exp(loss_rounded):.3f})", flush=True)

    model.to(torch.bfloat16).save_pretrained(bf16_dir)
    transformers.GenerationConfig(bos_token_id=0, eos_token_id=2, pad_token_id=0, do_sample=True,
                                  temperature=0.8, top_p=0.95).save_pretrained(bf16_dir)
    with safe_open(os.path.join(bf16_dir, "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert "lm_head.weight" not in keys and "model.embed_tokens.weight" in keys, keys
    with open(os.path.join(bf16_dir, "config.json")) as f:
        saved_cfg = json.load(f)
    assert saved_cfg.get("tie_word_embeddings", True) is True, saved_cfg
    if "tie_word_embeddings" not in saved_cfg:  # make the tying explicit for readers that default to untied
        saved_cfg["tie_word_embeddings"] = True
        with open(os.path.join(bf16_dir, "config.json"), "w") as f:
            json.dump(saved_cfg, f, indent=2)

    reloaded = transformers.AutoModelForCausalLM.from_pretrained(bf16_dir, dtype=torch.bfloat16).cuda().eval()
    samples = {"def fibonacci(": greedy(reloaded, tok, "def fibonacci("),
               chat_prompt: greedy(reloaded, tok, chat_prompt)}
    for prompt, out in samples.items():
        print("=== greedy from", repr(prompt), "\n" + prompt + out, flush=True)

    record = {"config": json.loads(model.config.to_json_string()), "params": n_params, "steps": step,
              "tokens_seen": step * BATCH * SEQ, "train_stream_tokens": len(stream), "seconds": round(seconds, 1),
              "compiled": compiled, "final_train_loss": last_loss,
              "heldout_curve": curve, "heldout_tokens": len(heldout_ids), "heldout_loss": loss_fp32, "heldout_ppl": math.exp(loss_fp32),
              "heldout_loss_bf16_weights": loss_rounded, "heldout_ppl_bf16_weights": math.exp(loss_rounded),
              "chat_docs": n_chat, "raw_docs": len(train), "torch": torch.__version__,
              "transformers": transformers.__version__, "gpu": torch.cuda.get_device_name(0),
              "greedy_samples": samples}
    with open(os.path.join(args.out_dir, "demo_train.json"), "w") as f:
        json.dump(record, f, indent=2)
    print("wrote", args.out_dir, flush=True)


if __name__ == "__main__":
    main()
