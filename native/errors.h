// The error codes the engine reports to JS, and the one place they become JS errors.
// Codes match lib/errors.ts; JS hands its SrfError class over at load (setErrorClass).
#pragma once
#include <napi.h>
#include <stdexcept>
#include <string>

namespace srf {

namespace code {
constexpr const char* kInvalidArgument = "INVALID_ARGUMENT";
constexpr const char* kModelLoadFailed = "MODEL_LOAD_FAILED";
constexpr const char* kMmprojInvalid = "MMPROJ_INVALID";
constexpr const char* kLoraInvalid = "LORA_INVALID";
constexpr const char* kGrammarInvalid = "GRAMMAR_INVALID";
constexpr const char* kContextTooSmall = "CONTEXT_TOO_SMALL";
constexpr const char* kDecodeFailed = "DECODE_FAILED";
constexpr const char* kImageEncodeFailed = "IMAGE_ENCODE_FAILED";
constexpr const char* kAborted = "ABORTED";
constexpr const char* kClosed = "CLOSED";
constexpr const char* kDeviceFailed = "DEVICE_FAILED";
}  // namespace code

// A failure with a stable code, thrown and caught inside C++ (never across the N-API boundary).
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Remembers the JS SrfError constructor for this environment.
void SetErrorClass(Napi::Env env, Napi::Function ctor);
// Builds `new SrfError(code, message, { file })` (a plain Error with .code if no class was set).
Napi::Value MakeError(Napi::Env env, const std::string& code, const std::string& message,
                      const std::string& file = "");
// Throws it as a JS exception.
[[noreturn]] void ThrowError(Napi::Env env, const std::string& code, const std::string& message);

}  // namespace srf
