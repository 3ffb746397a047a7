// An error answered to an HTTP client, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
// The request layer throws it for bad input (400 naming the field), the HTTP layer for auth (401), unknown
// models (404), oversize bodies (413) and the like; nothing is queued on the engine when one is thrown.
#pragma once

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

namespace adallm::server {

class ApiError : public std::exception {
 public:
  // An empty param or code is written as null.
  ApiError(int status, std::string message, std::string param = "", std::string type = "", std::string code = "");

  int status() const { return status_; }
  const std::string& message() const { return message_; }
  const std::string& param() const { return param_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const char* what() const noexcept override { return message_.c_str(); }

  nlohmann::ordered_json body() const;

 private:
  int status_;
  std::string message_;
  std::string param_;
  std::string type_;  // default by status: invalid_request_error (4xx), server_error (5xx)
  std::string code_;
};

// 400 invalid_request_error; the message starts with the field's name so that a client sees which one.
ApiError invalid_field(const std::string& field, const std::string& problem);

// Serializes a response body; invalid UTF-8 (which generated text may hold) becomes U+FFFD instead of
// throwing.
std::string dump_json(const nlohmann::ordered_json& value);

}  // namespace adallm::server
