// Runs a parsed template against a context, with Jinja2's scoping (a for-loop iteration and a macro call
// get their own frame; if/with/set do not leak out of a loop), its default Undefined (prints as "", fails
// on attribute access or arithmetic) and the globals transformers adds (raise_exception, strftime_now)
// plus range/namespace/dict. Expression evaluation is in evaluator.cpp; the library in builtins.h.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "text/jinja/ast.h"

namespace adallm::text::jinja {

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};

// Thrown by raise_exception() and every type/undefined error while rendering; render() turns it into
// an adallm::Error carrying the template name and the line being evaluated.
struct RenderError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Interpreter {
 public:
  explicit Interpreter(const Template& tmpl) : tmpl_(tmpl) {}

  // `context` must be a Dict value: its keys become template variables.
  std::string render(const Value& context);

  Value eval(const Expr& e);
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter_chain(const Expr& chain, Value hole);
  int current_line() const { return line_; }
  // namespace() objects can hold themselves ({% set ns.me = ns %}); render() empties them at the end so
  // that such cycles do not leak.
  void track_namespace(const Value& ns) { namespaces_.push_back(ns.dict); }
  // Jinja2's getattr (methods, then keys) and getitem (keys, then attributes); missing gives Undefined.
  Value eval_getattr(const Value& obj, const std::string& name);
  Value eval_getitem(const Value& obj, const Value& key);

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, std::string& out);
  Flow exec(const Stmt& s, std::string& out);
  void exec_for(const Stmt& s, std::string& out);
  void exec_set(const Stmt& s, std::string& out);
  void define_macro(const Stmt& s);
  void exec_call_block(const Stmt& s, std::string& out);
  Value call_macro(const Stmt& macro, size_t closure, CallArgs& args, const Value& caller);
  size_t keep_frame_alive(std::shared_ptr<Frame> frame);
  void assign(const Target& t, Value v);
  void install_globals(Frame& f);

  Value eval_slice(const Expr& e);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  Value eval_compare(const Expr& e);
  Value eval_call(const Expr& e);
  CallArgs eval_args(const Expr& e, size_t first_positional);

  const Template& tmpl_;
  std::shared_ptr<Frame> frame_;
  // Frames macros close over, owned here and referred to by index: a macro stored in its own frame
  // must not own that frame (a shared_ptr cycle would leak every render).
  std::vector<std::shared_ptr<Frame>> closures_;
  std::vector<std::weak_ptr<DictData>> namespaces_;
  int line_ = 1;
  int call_depth_ = 0;
  size_t output_limit_ = 64u << 20;
};

// Iteration in Python order: list/tuple items, dict keys, string code points; Undefined is empty.
std::vector<Value> iterate(const Value& v);
[[noreturn]] void undefined_error(const Value& v);

}  // namespace adallm::text::jinja
