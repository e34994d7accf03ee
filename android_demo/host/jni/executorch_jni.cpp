// JNI bridge from org.edgekit.host.ExecuTorchRunner to ExecuTorch's C++ runtime, the one inside the
// locked `executorch` wheel (the same Program/Method code and XNNPACK delegate the Python runtime runs),
// so the JVM scores a bundle's .pte exactly as the server's replay does.
//
// One handle = one loaded program and its `forward` method, set up as ExecuTorch's executor_runner
// does: memory-planned buffers sized from the method's metadata. Every failure becomes a Java
// exception carrying the runtime's error, so a bad file or input never takes the JVM down.

#include <jni.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <executorch/runtime/core/data_loader.h>
#include <executorch/runtime/core/error.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/hierarchical_allocator.h>
#include <executorch/runtime/core/memory_allocator.h>
#include <executorch/runtime/core/portable_type/tensor_impl.h>
#include <executorch/runtime/executor/memory_manager.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

namespace et = executorch::runtime;
using executorch::aten::ScalarType;

namespace {

// The wheel ships no header for extension/data_loader, so this is BufferDataLoader's few lines:
// segments are views into the bytes the Kotlin side read (and checked the sha256 of).
class BytesLoader final : public et::DataLoader {
 public:
  explicit BytesLoader(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}

  et::Result<et::FreeableBuffer> load(size_t offset, size_t size, const SegmentInfo&) const override {
    if (offset > bytes_.size() || size > bytes_.size() - offset) {
      return et::Error::InvalidArgument;  // a segment past the end: a truncated file
    }
    return et::FreeableBuffer(bytes_.data() + offset, size, nullptr);
  }

  et::Error load_into(size_t offset, size_t size, const SegmentInfo& info, void* buffer) const override {
    auto segment = load(offset, size, info);
    if (!segment.ok()) {
      return segment.error();
    }
    std::memcpy(buffer, segment->data(), size);
    return et::Error::Ok;
  }

  et::Result<size_t> size() const override { return bytes_.size(); }

 private:
  const std::vector<uint8_t>& bytes_;
};

// The method allocator holds the method's structures and the delegate's state; its size depends on
// the model, so it grows on the heap instead of being a guessed fixed pool (MallocMemoryAllocator's
// approach; its header is not in the wheel either).
class HeapAllocator final : public et::MemoryAllocator {
 public:
  HeapAllocator() : et::MemoryAllocator(0, nullptr) {}
  ~HeapAllocator() override { reset(); }

  void* allocate(size_t size, size_t alignment = kDefaultAlignment) override {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      return nullptr;
    }
    alignment = alignment < alignof(std::max_align_t) ? alignof(std::max_align_t) : alignment;
    size_t rounded = (size + alignment - 1) / alignment * alignment;  // aligned_alloc wants a multiple
    void* block = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
    if (block != nullptr) {
      blocks_.push_back(block);
    }
    return block;
  }

  // The runtime resets the temp allocator after every kernel or delegate call.
  void reset() override {
    for (void* block : blocks_) {
      std::free(block);
    }
    blocks_.clear();
  }

 private:
  std::vector<void*> blocks_;
};

// Members are declared in dependency order so they are destroyed in reverse: the method before the
// memory it was planned into, the program before the bytes it points at.
struct Runner {
  std::vector<uint8_t> bytes;
  std::unique_ptr<BytesLoader> loader;
  std::optional<et::Program> program;
  HeapAllocator method_allocator;
  HeapAllocator temp_allocator;
  std::vector<std::unique_ptr<uint8_t[]>> planned_buffers;
  std::vector<et::Span<uint8_t>> planned_spans;
  std::unique_ptr<et::HierarchicalAllocator> planned_memory;
  std::unique_ptr<et::MemoryManager> memory_manager;
  std::optional<et::Method> method;
  std::vector<int32_t> input_sizes;
  std::vector<float> input;  // the window handed to set_input, which copies it into planned memory
  std::mutex lock;           // a Method runs one call at a time
};

class JavaError {
 public:
  JavaError(const char* java_class, std::string message) : java_class(java_class), message(std::move(message)) {}
  const char* java_class;
  std::string message;
};

[[noreturn]] void fail(std::string message) { throw JavaError("java/lang/IllegalStateException", std::move(message)); }

[[noreturn]] void bad_argument(std::string message) {
  throw JavaError("java/lang/IllegalArgumentException", std::move(message));
}

void check(et::Error error, const std::string& what) {
  if (error != et::Error::Ok) {
    fail(what + " (" + et::to_string(error) + ")");
  }
}

std::string shape_text(const std::vector<int64_t>& sizes) {
  std::string text = "(";
  for (size_t i = 0; i < sizes.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(sizes[i]);
  }
  return text + (sizes.size() == 1 ? ",)" : ")");
}

// Runs `body`, turning what it throws into a pending Java exception (the caller returns at once).
template <typename Body, typename Value>
Value guarded(JNIEnv* env, Value on_error, Body body) {
  const char* java_class = "java/lang/IllegalStateException";
  std::string message;
  try {
    return body();
  } catch (const JavaError& error) {
    java_class = error.java_class;
    message = error.message;
  } catch (const std::bad_alloc&) {
    java_class = "java/lang/OutOfMemoryError";
    message = "ExecuTorch runner: out of native memory";
  } catch (const std::exception& error) {
    message = std::string("ExecuTorch runner: ") + error.what();
  }
  if (!env->ExceptionCheck()) {  // a JNI call may already have raised one (e.g. OutOfMemoryError)
    env->ThrowNew(env->FindClass(java_class), message.c_str());
  }
  return on_error;
}

Runner* runner_of(jlong handle) {
  if (handle == 0) {
    fail("the ExecuTorch runner is closed");
  }
  return reinterpret_cast<Runner*>(handle);
}

std::unique_ptr<Runner> load(std::vector<uint8_t> bytes) {
  static std::once_flag initialised;
  std::call_once(initialised, [] { et::runtime_init(); });

  auto runner = std::make_unique<Runner>();
  runner->bytes = std::move(bytes);
  runner->loader = std::make_unique<BytesLoader>(runner->bytes);
  // InternalConsistency runs the flatbuffer verifier: a truncated or altered file is refused here
  // instead of being read past its end.
  auto program = et::Program::load(runner->loader.get(), et::Program::Verification::InternalConsistency);
  check(program.error(), "not a valid ExecuTorch program");
  runner->program.emplace(std::move(program.get()));

  auto meta = runner->program->method_meta("forward");
  check(meta.error(), "the program has no 'forward' method");
  if (meta->num_inputs() != 1 || meta->num_outputs() != 1) {
    fail("forward has " + std::to_string(meta->num_inputs()) + " inputs and " +
         std::to_string(meta->num_outputs()) + " outputs, expected 1 and 1");
  }
  auto input_meta = meta->input_tensor_meta(0);
  check(input_meta.error(), "forward's input is not a tensor");
  auto output_meta = meta->output_tensor_meta(0);
  check(output_meta.error(), "forward's output is not a tensor");
  if (input_meta->scalar_type() != ScalarType::Float || output_meta->scalar_type() != ScalarType::Float) {
    fail("forward must take and give float32 tensors");
  }
  for (int32_t size : input_meta->sizes()) {
    runner->input_sizes.push_back(size);
  }

  // One buffer per memory-planned arena, sized by the exporter's plan (as executor_runner does).
  for (size_t id = 0; id < meta->num_memory_planned_buffers(); ++id) {
    auto size = meta->memory_planned_buffer_size(id);
    check(size.error(), "cannot read the memory plan");
    runner->planned_buffers.push_back(std::make_unique<uint8_t[]>(static_cast<size_t>(size.get())));
    runner->planned_spans.emplace_back(runner->planned_buffers.back().get(), static_cast<size_t>(size.get()));
  }
  runner->planned_memory = std::make_unique<et::HierarchicalAllocator>(
      et::Span<et::Span<uint8_t>>(runner->planned_spans.data(), runner->planned_spans.size()));
  runner->memory_manager = std::make_unique<et::MemoryManager>(
      &runner->method_allocator, runner->planned_memory.get(), &runner->temp_allocator);

  auto method = runner->program->load_method("forward", runner->memory_manager.get());
  check(method.error(), "cannot load method 'forward'");
  runner->method.emplace(std::move(method.get()));
  return runner;
}

std::vector<float> forward(Runner& runner, std::vector<float> window, const std::vector<int64_t>& shape) {
  std::vector<int64_t> expected(runner.input_sizes.begin(), runner.input_sizes.end());
  if (shape != expected) {
    bad_argument("input shape " + shape_text(shape) + ", the model takes " + shape_text(expected));
  }
  size_t count = 1;
  for (int64_t size : expected) {
    count *= static_cast<size_t>(size);
  }
  if (window.size() != count) {
    bad_argument("input of " + std::to_string(window.size()) + " values, shape " + shape_text(expected) +
                 " needs " + std::to_string(count));
  }

  std::lock_guard<std::mutex> hold(runner.lock);
  runner.input = std::move(window);
  std::vector<int32_t> sizes = runner.input_sizes;
  std::vector<uint8_t> dim_order(sizes.size());
  std::vector<int32_t> strides(sizes.size());
  int32_t stride = 1;
  for (size_t i = sizes.size(); i-- > 0;) {  // contiguous, row-major
    dim_order[i] = static_cast<uint8_t>(i);
    strides[i] = stride;
    stride *= sizes[i];
  }
  executorch::runtime::etensor::TensorImpl impl(ScalarType::Float, static_cast<ssize_t>(sizes.size()),
                                                sizes.data(), runner.input.data(), dim_order.data(),
                                                strides.data());
  executorch::aten::Tensor tensor(&impl);
  // Every call: execution reuses (and overwrites) the planned input memory.
  check(runner.method->set_input(et::EValue(tensor), 0), "cannot set the input");
  check(runner.method->execute(), "forward failed");

  const et::EValue& output = runner.method->get_output(0);
  if (!output.isTensor()) {
    fail("forward's output is not a tensor");
  }
  const executorch::aten::Tensor& logits = output.toTensor();
  const float* values = logits.const_data_ptr<float>();
  return std::vector<float>(values, values + logits.numel());
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_edgekit_host_ExecuTorchRunner_nativeLoad(JNIEnv* env, jobject, jbyteArray pte) {
  return guarded(env, jlong{0}, [&] {
    std::vector<uint8_t> bytes(static_cast<size_t>(env->GetArrayLength(pte)));
    env->GetByteArrayRegion(pte, 0, static_cast<jsize>(bytes.size()), reinterpret_cast<jbyte*>(bytes.data()));
    return reinterpret_cast<jlong>(load(std::move(bytes)).release());
  });
}

JNIEXPORT jlongArray JNICALL Java_org_edgekit_host_ExecuTorchRunner_nativeInputShape(JNIEnv* env, jobject,
                                                                                     jlong handle) {
  return guarded(env, jlongArray{nullptr}, [&] {
    const Runner* runner = runner_of(handle);
    std::vector<jlong> sizes(runner->input_sizes.begin(), runner->input_sizes.end());
    jlongArray shape = env->NewLongArray(static_cast<jsize>(sizes.size()));
    if (shape != nullptr) {
      env->SetLongArrayRegion(shape, 0, static_cast<jsize>(sizes.size()), sizes.data());
    }
    return shape;
  });
}

JNIEXPORT jfloatArray JNICALL Java_org_edgekit_host_ExecuTorchRunner_nativeForward(JNIEnv* env, jobject, jlong handle,
                                                                                   jfloatArray window,
                                                                                   jlongArray shape) {
  return guarded(env, jfloatArray{nullptr}, [&] {
    Runner* runner = runner_of(handle);
    std::vector<float> values(static_cast<size_t>(env->GetArrayLength(window)));
    env->GetFloatArrayRegion(window, 0, static_cast<jsize>(values.size()), values.data());
    std::vector<int64_t> sizes(static_cast<size_t>(env->GetArrayLength(shape)));
    env->GetLongArrayRegion(shape, 0, static_cast<jsize>(sizes.size()), reinterpret_cast<jlong*>(sizes.data()));
    std::vector<float> logits = forward(*runner, std::move(values), sizes);
    jfloatArray result = env->NewFloatArray(static_cast<jsize>(logits.size()));
    if (result != nullptr) {
      env->SetFloatArrayRegion(result, 0, static_cast<jsize>(logits.size()), logits.data());
    }
    return result;
  });
}

JNIEXPORT void JNICALL Java_org_edgekit_host_ExecuTorchRunner_nativeClose(JNIEnv*, jobject, jlong handle) {
  delete reinterpret_cast<Runner*>(handle);  // deleting 0 (already closed) is a no-op
}

}  // extern "C"
