// JNI bridge: bundle assets -> checked ncnn::Net; Bitmap -> letterbox (core) -> ncnn -> core postprocess.
// Everything that is not ncnn or Android lives in ../core and is unit-tested on the host.
#include <android/asset_manager.h>
#include <android/asset_manager_jni.h>
#include <android/bitmap.h>
#include <android/log.h>
#include <jni.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "net.h"  // ncnn

#include "detector_core.h"
#include "sha256.h"

#define LOG_TAG "yoloxedge"
#define LOGI(...) __android_log_print(ANDROID_LOG_INFO, LOG_TAG, __VA_ARGS__)

namespace {

struct Detector {
    yolox::ModelConfig cfg;
    std::vector<unsigned char> param;  // kept alive: ncnn reads weights from these buffers
    std::vector<unsigned char> weights;
    ncnn::Net net;
    std::mutex mutex;  // one inference at a time per detector (camera frames + picked images)
};

std::vector<unsigned char> read_asset(AAssetManager* mgr, const std::string& path) {
    AAsset* a = AAssetManager_open(mgr, path.c_str(), AASSET_MODE_BUFFER);
    if (!a) throw std::runtime_error(path + ": missing from the app's assets; run android_demo/prepare_assets.sh BUNDLE");
    const size_t n = static_cast<size_t>(AAsset_getLength(a));
    std::vector<unsigned char> buf(n);
    const int got = AAsset_read(a, buf.data(), n);
    AAsset_close(a);
    if (got < 0 || static_cast<size_t>(got) != n) throw std::runtime_error(path + ": could not be read");
    return buf;
}

// Every file the model uses must match its sha256 in metadata.json before ncnn sees it.
std::vector<unsigned char> read_checked(AAssetManager* mgr, const std::string& dir, const yolox::ModelConfig& cfg,
                                        const std::string& name) {
    std::vector<unsigned char> data = read_asset(mgr, dir + "/" + name);
    for (const auto& f : cfg.file_sha256) {
        if (f.first != name) continue;
        if (yolox::sha256_hex(data.data(), data.size()) != f.second)
            throw std::runtime_error(name + ": sha256 does not match metadata.json; re-run prepare_assets.sh");
        return data;
    }
    throw std::runtime_error(name + ": not listed in metadata.json files");
}

std::string pick_file(const yolox::ModelConfig& cfg, const std::string& suffix) {
    for (const std::string& f : cfg.model_files)
        if (f.size() >= suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) return f;
    throw std::runtime_error("metadata.json lists no *" + suffix + " file; package an ncnn export (--target ncnn)");
}

std::unique_ptr<Detector> create(AAssetManager* mgr, const std::string& dir, int threads) {
    auto d = std::make_unique<Detector>();
    std::vector<unsigned char> meta = read_asset(mgr, dir + "/metadata.json");
    d->cfg = yolox::parse_metadata(std::string(meta.begin(), meta.end()));
    d->param = read_checked(mgr, dir, d->cfg, pick_file(d->cfg, ".param"));
    d->param.push_back('\0');  // load_param_mem reads a C string
    d->weights = read_checked(mgr, dir, d->cfg, pick_file(d->cfg, ".bin"));

    ncnn::Option& opt = d->net.opt;
    opt.num_threads = threads;
    opt.use_vulkan_compute = false;
    // fp16 storage/arithmetic flush tiny weights and shift scores (TOOLCHAIN-NOTES: up to 0.73);
    // keep FP32 maths so the phone matches the host-verified outputs.
    opt.use_fp16_packed = false;
    opt.use_fp16_storage = false;
    opt.use_fp16_arithmetic = false;
    opt.use_bf16_storage = false;
    opt.use_int8_inference = true;  // needed by INT8 bundles; no effect on FP32 layers
    if (d->net.load_param_mem(reinterpret_cast<const char*>(d->param.data())) != 0)
        throw std::runtime_error("ncnn could not parse the .param file (ncnn too old for this model?)");
    if (d->net.load_model(d->weights.data()) <= 0) throw std::runtime_error("ncnn could not load the .bin weights");
    LOGI("loaded %s (%s), input %dx%d, %zu classes", d->cfg.name.c_str(), d->cfg.precision.c_str(), d->cfg.input_w,
         d->cfg.input_h, d->cfg.class_names.size());
    return d;
}

ncnn::Mat extract(ncnn::Extractor& ex, const std::string& name) {
    ncnn::Mat m;
    if (ex.extract(name.c_str(), m) != 0 || m.empty()) throw std::runtime_error("ncnn output " + name + " missing");
    // 2-D blobs are contiguous; reshape flattens 3-D ones (channel padding) into one row.
    return m.dims == 3 ? m.reshape(m.w * m.h * m.c) : m;
}

void throw_java(JNIEnv* env, const char* msg) {
    jclass cls = env->FindClass("java/lang/IllegalStateException");
    if (cls) env->ThrowNew(cls, msg);
}

// Unlocks a bitmap's pixels when it goes out of scope.
struct PixelsLock {
    JNIEnv* env;
    jobject bitmap;
    ~PixelsLock() { AndroidBitmap_unlockPixels(env, bitmap); }
};

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeCreate(JNIEnv* env, jclass, jobject assets,
                                                                           jstring dir, jint threads) {
    const char* d = env->GetStringUTFChars(dir, nullptr);
    std::string bundle_dir(d);
    env->ReleaseStringUTFChars(dir, d);
    try {
        return reinterpret_cast<jlong>(create(AAssetManager_fromJava(env, assets), bundle_dir, threads).release());
    } catch (const std::exception& e) {
        throw_java(env, (bundle_dir + ": " + e.what()).c_str());
        return 0;
    }
}

JNIEXPORT void JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeDestroy(JNIEnv*, jclass, jlong h) {
    delete reinterpret_cast<Detector*>(h);
}

JNIEXPORT jobjectArray JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeClassNames(JNIEnv* env, jclass, jlong h) {
    const auto& names = reinterpret_cast<Detector*>(h)->cfg.class_names;
    jobjectArray arr = env->NewObjectArray(static_cast<jsize>(names.size()), env->FindClass("java/lang/String"), nullptr);
    for (size_t i = 0; i < names.size(); ++i) {
        jstring s = env->NewStringUTF(names[i].c_str());
        env->SetObjectArrayElement(arr, static_cast<jsize>(i), s);
        env->DeleteLocalRef(s);
    }
    return arr;
}

// [conf, nms, max_det, input_w, input_h] as recorded in the bundle.
JNIEXPORT jfloatArray JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeSettings(JNIEnv* env, jclass, jlong h) {
    const auto& c = reinterpret_cast<Detector*>(h)->cfg;
    const float v[5] = {c.thresholds.conf, c.thresholds.nms, static_cast<float>(c.thresholds.max_det),
                        static_cast<float>(c.input_w), static_cast<float>(c.input_h)};
    jfloatArray out = env->NewFloatArray(5);
    env->SetFloatArrayRegion(out, 0, 5, v);
    return out;
}

JNIEXPORT jstring JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeDescribe(JNIEnv* env, jclass, jlong h) {
    const auto& c = reinterpret_cast<Detector*>(h)->cfg;
    std::string s = c.name + " " + c.precision + " " + std::to_string(c.input_w) + "x" + std::to_string(c.input_h);
    return env->NewStringUTF(s.c_str());
}

// Returns [inference_ms, total_ms, n, then n x (x1, y1, x2, y2, score, label)] in bitmap pixels.
JNIEXPORT jfloatArray JNICALL Java_com_yoloxedge_demo_YoloxDetector_nativeDetect(JNIEnv* env, jclass, jlong h,
                                                                                 jobject bitmap, jfloat conf,
                                                                                 jfloat nms_iou) {
    Detector* d = reinterpret_cast<Detector*>(h);
    AndroidBitmapInfo info{};  // flags 0 (premultiplied, BitmapFactory's default) where an old Android leaves it unset
    void* pixels = nullptr;
    if (AndroidBitmap_getInfo(env, bitmap, &info) != ANDROID_BITMAP_RESULT_SUCCESS ||
        info.format != ANDROID_BITMAP_FORMAT_RGBA_8888) {
        throw_java(env, "expected an ARGB_8888 bitmap");
        return nullptr;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<yolox::Detection> dets;
    double infer_ms = 0.0;
    try {
        std::lock_guard<std::mutex> lock(d->mutex);
        const yolox::ModelConfig& c = d->cfg;
        const int w = static_cast<int>(info.width), hgt = static_cast<int>(info.height);
        yolox::Letterbox lb = yolox::compute_letterbox(w, hgt, c.input_w, c.input_h);
        ncnn::Mat in(c.input_w, c.input_h, 3);
        std::vector<float> chw(static_cast<size_t>(3) * c.input_w * c.input_h);
        if (AndroidBitmap_lockPixels(env, bitmap, &pixels) != ANDROID_BITMAP_RESULT_SUCCESS)
            throw std::runtime_error("cannot lock the bitmap");
        {
            PixelsLock lock_pixels{env, bitmap};  // unlocked after the fill, or on any throw (an allocation)
            // BitmapFactory premultiplies colour by alpha; the Python side (OpenCV) keeps it as stored,
            // so a semi-transparent PNG is un-premultiplied first. info.flags says which (API 30+;
            // 0 = premultiplied before, BitmapFactory's default); opaque bitmaps (JPEGs) skip the scan.
            const uint32_t alpha = info.flags & ANDROID_BITMAP_FLAGS_ALPHA_MASK;
            const uint8_t* src = static_cast<const uint8_t*>(pixels);
            int row_bytes = static_cast<int>(info.stride);
            std::vector<uint8_t> straight;
            if (alpha == ANDROID_BITMAP_FLAGS_ALPHA_PREMUL && yolox::unpremultiply(src, w, hgt, row_bytes, straight)) {
                src = straight.data();
                row_bytes = w * 4;
        }
        yolox::fill_input(src, w, hgt, row_bytes, yolox::PixelFormat::RGBA, lb, c.pad_value, c.channel_order, chw.data());
        }
        const size_t plane = static_cast<size_t>(c.input_w) * c.input_h;
        for (int p = 0; p < 3; ++p) {
            float* dst = in.channel(p);  // ncnn pads each channel to 16 bytes: copy plane by plane
            std::copy(chw.begin() + p * plane, chw.begin() + (p + 1) * plane, dst);
        }

        const auto t1 = std::chrono::steady_clock::now();
        ncnn::Extractor ex = d->net.create_extractor();
        ex.input(c.input_name.c_str(), in);
        ncnn::Mat boxes = extract(ex, c.boxes_output), scores = extract(ex, c.scores_output);
        std::vector<yolox::Detection> cand;
        const int n = static_cast<int>(boxes.total() / 4);
        if (c.output_kind == "topk") {
            ncnn::Mat labels = extract(ex, c.labels_output);
            if (static_cast<int>(scores.total()) != n || static_cast<int>(labels.total()) != n)
                throw std::runtime_error("top-K outputs disagree in length");
            infer_ms = ms_since(t1);
            cand = yolox::candidates_topk(boxes, scores, labels, n, conf);
        } else {
            const int nc = static_cast<int>(c.class_names.size());
            if (static_cast<int>(scores.total()) != n * nc) throw std::runtime_error("scores do not match the classes");
            infer_ms = ms_since(t1);
            cand = yolox::candidates_dense(boxes, scores, n, nc, conf);
        }
        dets = yolox::nms(std::move(cand), nms_iou, c.thresholds.agnostic, c.thresholds.max_det);
        yolox::map_to_image(dets, lb, w, hgt);
    } catch (const std::exception& e) {
        throw_java(env, e.what());
        return nullptr;
    }
    std::vector<float> out = {static_cast<float>(infer_ms), static_cast<float>(ms_since(t0)),
                              static_cast<float>(dets.size())};
    for (const auto& x : dets) out.insert(out.end(), {x.x1, x.y1, x.x2, x.y2, x.score, static_cast<float>(x.label)});
    jfloatArray arr = env->NewFloatArray(static_cast<jsize>(out.size()));
    env->SetFloatArrayRegion(arr, 0, static_cast<jsize>(out.size()), out.data());
    return arr;
}

}  // extern "C"
