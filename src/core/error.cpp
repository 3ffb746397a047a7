// Rendering of adallm::Error into its one-line form.
#include "core/error.h"

#include <utility>

namespace adallm {

Error::Error(std::string message) : message_(std::move(message)) { render(); }

Error& Error::file(std::string path) {
  if (file_.empty()) file_ = std::move(path);
  render();
  return *this;
}

Error& Error::tensor(std::string name) {
  if (tensor_.empty()) tensor_ = std::move(name);
  render();
  return *this;
}

Error& Error::hint(std::string text) {
  if (hint_.empty()) hint_ = std::move(text);
  render();
  return *this;
}

void Error::render() {
  rendered_.clear();
  if (!tensor_.empty()) rendered_ += "tensor " + tensor_ + ": ";
  rendered_ += message_;
  if (!file_.empty()) rendered_ += " in " + file_;
  if (!hint_.empty()) rendered_ += "; " + hint_;
}

}  // namespace adallm
