// The one error type of AdaLLM: a message plus where it happened (file, tensor) and a hint for the user.
// It renders as a single line, `tensor T: what failed, expected X, got Y in FILE; hint`, which the CLI
// prints as is. Layers that learn more context while an Error unwinds add it with the setters and rethrow.
#pragma once

#include <exception>
#include <string>

namespace adallm {

class Error : public std::exception {
 public:
  explicit Error(std::string message);

  // Setters return *this so that `throw Error("...").file(path).tensor(name);` reads as one statement.
  // An existing value is kept: the innermost layer knows best.
  Error& file(std::string path);
  Error& tensor(std::string name);
  Error& hint(std::string text);

  const std::string& message() const { return message_; }
  const std::string& file_path() const { return file_; }
  const std::string& tensor_name() const { return tensor_; }
  const std::string& hint_text() const { return hint_; }

  const char* what() const noexcept override { return rendered_.c_str(); }

 private:
  void render();

  std::string message_;
  std::string file_;
  std::string tensor_;
  std::string hint_;
  std::string rendered_;
};

}  // namespace adallm
