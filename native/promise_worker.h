// An AsyncWorker that settles a Promise: Run() executes off the JS thread and may throw
// srf::Error; the rejection is an SrfError with that code. Holding the receiver object keeps
// the native object alive for as long as the work runs.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "errors.h"

namespace srf {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(const Napi::Object& receiver, const char* name)
      : Napi::AsyncWorker(receiver.Env(), name),
        deferred_(Napi::Promise::Deferred::New(receiver.Env())),
        receiver_(Napi::Persistent(receiver)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Runs on the JS thread after a failure, before the rejection (e.g. to reset state).
  virtual void Cleanup() {}

 private:
  void Execute() override {
    try {
      Run();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = code::kDecodeFailed;
      SetError(std::string("internal error: ") + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error& error) override {
    Cleanup();
    deferred_.Reject(MakeError(Env(), code_, error.Message()));
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference receiver_;
  std::string code_ = code::kDecodeFailed;
};

// Small readers for option objects built by lib/ (already validated there).
inline std::string GetString(const Napi::Object& o, const char* key, const std::string& fallback = "") {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}
inline double GetNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
// An integer option in [min, max]; anything else (a fraction, NaN, out of range) is an
// INVALID_ARGUMENT naming the option, never a cast with undefined behaviour.
inline int64_t GetInteger(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != std::floor(d)) {
    ThrowError(o.Env(), code::kInvalidArgument,
               std::string(key) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int64_t>(d);
}
inline bool GetBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

}  // namespace srf
