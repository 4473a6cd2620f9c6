/* The C ABI between the addon and libfaceg2e_trt.so (native/engines/trt/). The addon never links TensorRT: it
 * dlopen()s libnvinfer and this library and resolves these symbols with dlsym (trt_loader.cpp). Plain C types
 * only, so the two sides may be built by different compilers. Every function returns 0 on success, or a
 * FGTRT_E_* code with a NUL-terminated message in `err` (at most errLen bytes). Bump FGTRT_ABI_VERSION on any
 * change. */
#ifndef FACEG2E_TRT_ABI_H
#define FACEG2E_TRT_ABI_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FGTRT_ABI_VERSION 1

#define FGTRT_OK 0
#define FGTRT_E_INVALID 1   /* bad argument (unknown tensor name, wrong rank, ...) */
#define FGTRT_E_NO_ENGINE 2 /* plan missing, corrupt, or built for another TensorRT/GPU */
#define FGTRT_E_TENSORRT 3  /* TensorRT reported an error (message carries its log) */
#define FGTRT_E_CUDA 4
#define FGTRT_E_IO 5
#define FGTRT_E_CANCELLED 6

#define FGTRT_MAX_DIMS 8

/* dtype codes (match the manifest names) */
#define FGTRT_FLOAT32 0
#define FGTRT_FLOAT16 1
#define FGTRT_BFLOAT16 2
#define FGTRT_INT32 3
#define FGTRT_INT64 4
#define FGTRT_INT8 5
#define FGTRT_BOOL 6
#define FGTRT_OTHER 7

typedef struct fgtrt_runtime fgtrt_runtime;

typedef struct fgtrt_tensor_info {
  char name[128];
  int32_t is_input;
  int32_t dtype;
  int32_t nb_dims;
  int64_t dims[FGTRT_MAX_DIMS]; /* -1 for a dynamic dimension (engine shape) */
} fgtrt_tensor_info;

typedef struct fgtrt_profile_dims {
  const char* name; /* input tensor */
  int32_t nb_dims;
  int64_t min[FGTRT_MAX_DIMS];
  int64_t opt[FGTRT_MAX_DIMS];
  int64_t max[FGTRT_MAX_DIMS];
} fgtrt_profile_dims;

typedef struct fgtrt_build_options {
  const char* onnx_path;
  const char* plan_path;
  const fgtrt_profile_dims* profile; /* one optimisation profile: one entry per dynamic input */
  int32_t profile_count;
  uint64_t workspace_bytes; /* builder workspace pool limit */
  int32_t opt_level;        /* builder optimisation level 0..5 */
  /* progress: called from the building thread with one line of text; may be NULL */
  void (*progress)(void* user, const char* message);
  /* cancellation: polled between stages; non-zero = stop with FGTRT_E_CANCELLED; may be NULL */
  int32_t (*cancelled)(void* user);
  void* user;
} fgtrt_build_options;

typedef int32_t (*fgtrt_abi_version_fn)(void);
/* The TensorRT version the library was compiled against and the one it runs with (getInferLibVersion). */
typedef int32_t (*fgtrt_versions_fn)(int32_t* compiled, int32_t* linked);

typedef int32_t (*fgtrt_runtime_create_fn)(fgtrt_runtime** out, char* err, size_t errLen);
typedef void (*fgtrt_runtime_destroy_fn)(fgtrt_runtime* rt);
/* Deserialise a plan; returns its engine index in *engine. Creates a context with user-managed device memory. */
typedef int32_t (*fgtrt_engine_load_fn)(fgtrt_runtime* rt, const char* name, const char* plan_path, int32_t* engine, char* err, size_t errLen);
typedef int32_t (*fgtrt_engine_tensor_count_fn)(fgtrt_runtime* rt, int32_t engine);
typedef int32_t (*fgtrt_engine_tensor_info_fn)(fgtrt_runtime* rt, int32_t engine, int32_t index, fgtrt_tensor_info* out, char* err, size_t errLen);
/* Max device memory over all loaded engines (getDeviceMemorySizeV2), and handing one block to every context. */
typedef int64_t (*fgtrt_runtime_device_memory_size_fn)(fgtrt_runtime* rt);
typedef int32_t (*fgtrt_runtime_set_device_memory_fn)(fgtrt_runtime* rt, void* ptr, int64_t size, char* err, size_t errLen);
typedef int32_t (*fgtrt_set_input_shape_fn)(fgtrt_runtime* rt, int32_t engine, const char* name, const int64_t* dims, int32_t nb_dims, char* err, size_t errLen);
typedef int32_t (*fgtrt_set_tensor_address_fn)(fgtrt_runtime* rt, int32_t engine, const char* name, void* ptr, char* err, size_t errLen);
/* The context's shape of a tensor after the input shapes are set (outputs resolve then). */
typedef int32_t (*fgtrt_get_tensor_shape_fn)(fgtrt_runtime* rt, int32_t engine, const char* name, int64_t* dims, int32_t* nb_dims, char* err, size_t errLen);
/* enqueueV3 on `stream` (a cudaStream_t). */
typedef int32_t (*fgtrt_enqueue_fn)(fgtrt_runtime* rt, int32_t engine, void* stream, char* err, size_t errLen);
typedef int32_t (*fgtrt_build_engine_fn)(const fgtrt_build_options* opts, char* err, size_t errLen);

#ifdef __cplusplus
}
#endif
#endif
