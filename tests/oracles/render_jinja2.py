#!/usr/bin/python3
"""Second chat-template oracle: renders every conversation of OUT/templates/<family>.jsonl (written by
generate.mjs) with Python Jinja2 configured as transformers' _compile_jinja_template does, and adds
`expected_python` (or `expected_python_error`) to each line. This is the truth the C++ must match.
The lines of OUT/templates/<family>.requests.jsonl hold OpenAI chat requests instead: their `context` is
built here the way vLLM hands a request to transformers (request_context), then rendered the same way.
Run with Debian's /usr/bin/python3 (python3-jinja2); usage: render_jinja2.py OUT_DIR."""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers overrides Jinja's tojson, which would HTML-escape <>&' and sort keys.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    # transformers also adds its AssistantTracker extension ({% generation %}); none of the templates use it.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def request_context(request, base_context):
    """The template variables of an OpenAI chat request as vLLM's server builds them for transformers'
    apply_chat_template (vllm/entrypoints/chat_utils.py): text content parts joined with "\n", a null
    content as "", tool-call arguments decoded with json.loads (_postprocess_messages), tool_call_id kept;
    `name`, `refusal` and the like left out. tools go as the request wrote them (vLLM's pydantic round
    trip would add null description/parameters; transformers itself takes the dicts as given), None when
    there are none, as transformers passes it; then chat_template_kwargs."""
    messages = []
    for m in request["messages"]:
        content = m.get("content")
        if content is None:
            content = ""
        elif isinstance(content, list):
            content = "\n".join(part["text"] for part in content)
        message = {"role": m["role"], "content": content}
        if m.get("tool_calls"):
            message["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
                for c in m["tool_calls"]]
        if m["role"] == "tool":
            message["tool_call_id"] = m["tool_call_id"]
        messages.append(message)
    context = {"messages": messages, **base_context, "tools": request.get("tools") or None}
    context.update(request.get("chat_template_kwargs", {}))
    return context


def chat_template_of(config, name="default"):
    template = config["chat_template"]
    if isinstance(template, str):
        return template
    for entry in template:
        if entry["name"] == name:
            return entry["template"]
    raise KeyError(f"no chat template {name!r}")


def render_file(env, path, compiled):
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    stats = {"conversations": len(rows), "python_errors": 0, "js_differs": 0, "differing_ids": []}
    for row in rows:
        config_path = row.get("chat_template_file", row["tokenizer_config"])
        if config_path not in compiled:
            with open(config_path, encoding="utf-8") as f:
                # A chat_template.jinja is the template as it is (transformers reads the file whole).
                source = f.read() if "chat_template_file" in row else chat_template_of(json.loads(f.read()))
                compiled[config_path] = env.from_string(source)
        if "request" in row:
            row["context"] = request_context(row["request"], row["base_context"])
        try:
            row["expected_python"] = compiled[config_path].render(**row["context"])
        except jinja2.exceptions.TemplateError as e:
            row["expected_python"] = None
            row["expected_python_error"] = str(e)
            stats["python_errors"] += 1
        if "request" not in row and row["expected_python"] != row.get("expected"):
            stats["js_differs"] += 1
            stats["differing_ids"].append(row["id"])
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return stats


def main():
    out_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "oracles-out")
    templates = os.path.join(out_dir, "templates")
    env = make_environment()
    compiled = {}
    summary = {}
    for name in sorted(os.listdir(templates)):
        if not name.endswith(".jsonl"):
            continue
        family = name[: -len(".jsonl")]
        s = render_file(env, os.path.join(templates, name), compiled)
        summary[family] = s
        print(f"oracles: {family}: Jinja2 {jinja2.__version__} rendered {s['conversations']} conversations "
              f"({s['python_errors']} raise), @huggingface/jinja differs on {s['js_differs']}")
    with open(os.path.join(templates, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
