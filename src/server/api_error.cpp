// ApiError and the JSON serialization every response goes through (see api_error.h).
#include "server/api_error.h"

#include <utility>

namespace adallm::server {

ApiError::ApiError(int status, std::string message, std::string param, std::string type, std::string code)
    : status_(status), message_(std::move(message)), param_(std::move(param)), type_(std::move(type)),
      code_(std::move(code)) {
  if (type_.empty()) type_ = status_ >= 500 ? "server_error" : "invalid_request_error";
}

nlohmann::ordered_json ApiError::body() const {
  nlohmann::ordered_json error;
  error["message"] = message_;
  error["type"] = type_;
  error["param"] = param_.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param_);
  error["code"] = code_.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code_);
  return {{"error", std::move(error)}};
}

ApiError invalid_field(const std::string& field, const std::string& problem) {
  return ApiError(400, field + ": " + problem, field);
}

std::string dump_json(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace adallm::server
