#include "errors.h"

#include "addon_data.h"

namespace srf {

void SetErrorClass(Napi::Env env, Napi::Function ctor) {
  AddonData::Get(env).errorClass = Napi::Persistent(ctor);
}

Napi::Value MakeError(Napi::Env env, const std::string& code, const std::string& message,
                      const std::string& file) {
  auto& data = AddonData::Get(env);
  if (!data.errorClass.IsEmpty()) {
    Napi::Object options = Napi::Object::New(env);
    if (!file.empty()) options.Set("file", file);
    return data.errorClass.New({Napi::String::New(env, code), Napi::String::New(env, message), options});
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error.Value();
}

void ThrowError(Napi::Env env, const std::string& code, const std::string& message) {
  throw Napi::Error(env, MakeError(env, code, message));
}

}  // namespace srf
