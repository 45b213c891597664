// Host driver of the detection core, used by tests/native to compare with the Python runtime.
//   yolox_core_host geometry IMG_W IMG_H IN_W IN_H
//   yolox_core_host metadata METADATA.json
//   yolox_core_host postprocess CASE.json
//   yolox_core_host fill PIXELS.u8 IMG_W IMG_H FORMAT(BGR|RGB|BGRA|RGBA) IN_W IN_H PAD ORDER OUT.f32
// CASE.json: {"kind": "topk"|"decoded", "boxes": file, "scores": file, "labels": file (topk),
//   "count": N, "num_classes": C (decoded), "image": [w, h], "input": [w, h],
//   "conf", "nms", "max_det", "agnostic"}; files are raw little-endian float32, relative to CASE.json.
// Detections are printed one per line: label score x1 y1 x2 y2.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "detector_core.h"
#include "json.h"

using namespace yolox;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<float> read_floats(const std::string& path, size_t count) {
    std::string bytes = read_text(path);
    if (bytes.size() != count * sizeof(float))
        throw std::runtime_error(path + ": expected " + std::to_string(count) + " float32 values");
    std::vector<float> v(count);
    std::copy(bytes.data(), bytes.data() + bytes.size(), reinterpret_cast<char*>(v.data()));
    return v;
}

std::string dir_of(const std::string& path) {
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += c; }
        else if (static_cast<unsigned char>(c) < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += c;
    }
    return out + "\"";
}

int cmd_geometry(char** a) {
    Letterbox lb = compute_letterbox(std::stoi(a[0]), std::stoi(a[1]), std::stoi(a[2]), std::stoi(a[3]));
    std::printf("%.17g %d %d\n", lb.ratio, lb.resized_w, lb.resized_h);
    return 0;
}

int cmd_metadata(const std::string& path) {
    ModelConfig c = parse_metadata(read_text(path));
    std::ostringstream o;
    o << "{\"name\": " << quote(c.name) << ", \"precision\": " << quote(c.precision)
      << ", \"input_size\": [" << c.input_h << ", " << c.input_w << "], \"pad_value\": " << c.pad_value
      << ", \"channel_order\": " << quote(c.channel_order) << ", \"output_kind\": " << quote(c.output_kind)
      << ", \"input_name\": " << quote(c.input_name) << ", \"boxes_output\": " << quote(c.boxes_output)
      << ", \"scores_output\": " << quote(c.scores_output) << ", \"labels_output\": " << quote(c.labels_output)
      << ", \"conf\": " << c.thresholds.conf << ", \"nms\": " << c.thresholds.nms << ", \"max_det\": "
      << c.thresholds.max_det << ", \"agnostic\": " << (c.thresholds.agnostic ? "true" : "false")
      << ", \"class_names\": [";
    for (size_t i = 0; i < c.class_names.size(); ++i) o << (i ? ", " : "") << quote(c.class_names[i]);
    o << "], \"files\": {";
    for (size_t i = 0; i < c.file_sha256.size(); ++i)
        o << (i ? ", " : "") << quote(c.file_sha256[i].first) << ": " << quote(c.file_sha256[i].second);
    o << "}}";
    std::cout << o.str() << "\n";
    return 0;
}

int cmd_postprocess(const std::string& path) {
    json::Value c = json::parse(read_text(path));
    std::string dir = dir_of(path);
    std::string kind = c.at("kind").as_string();
    int n = c.at("count").as_int();
    const auto& image = c.at("image").as_array();
    const auto& input = c.at("input").as_array();
    int img_w = image[0].as_int(), img_h = image[1].as_int();
    Letterbox lb = compute_letterbox(img_w, img_h, input[0].as_int(), input[1].as_int());
    Thresholds t;
    t.conf = static_cast<float>(c.at("conf").as_number());
    t.nms = static_cast<float>(c.at("nms").as_number());
    t.max_det = c.at("max_det").as_int();
    t.agnostic = c.at("agnostic").as_bool();

    std::vector<float> boxes = read_floats(dir + c.at("boxes").as_string(), static_cast<size_t>(n) * 4);
    std::vector<Detection> cand;
    if (kind == "topk") {
        std::vector<float> scores = read_floats(dir + c.at("scores").as_string(), n);
        std::vector<float> labels = read_floats(dir + c.at("labels").as_string(), n);
        cand = candidates_topk(boxes.data(), scores.data(), labels.data(), n, t.conf);
    } else if (kind == "decoded") {
        int nc = c.at("num_classes").as_int();
        std::vector<float> scores = read_floats(dir + c.at("scores").as_string(), static_cast<size_t>(n) * nc);
        cand = candidates_dense(boxes.data(), scores.data(), n, nc, t.conf);
    } else {
        throw std::runtime_error("unknown kind " + kind);
    }
    std::vector<Detection> dets = nms(std::move(cand), t.nms, t.agnostic, t.max_det);
    map_to_image(dets, lb, img_w, img_h);
    for (const Detection& d : dets)
        std::printf("%d %.6f %.4f %.4f %.4f %.4f\n", d.label, d.score, d.x1, d.y1, d.x2, d.y2);
    return 0;
}

int cmd_fill(char** a) {
    std::string fmt_s = a[3];
    // RGBA_PREMUL: an Android bitmap's pixels, which the app un-premultiplies before the fill.
    const bool premul = fmt_s == "RGBA_PREMUL";
    PixelFormat fmt = fmt_s == "BGR" ? PixelFormat::BGR : fmt_s == "RGB" ? PixelFormat::RGB
                    : fmt_s == "BGRA" ? PixelFormat::BGRA : (fmt_s == "RGBA" || premul) ? PixelFormat::RGBA
                    : throw std::runtime_error("unknown pixel format " + fmt_s);
    int w = std::stoi(a[1]), h = std::stoi(a[2]);
    int cn = (fmt == PixelFormat::BGRA || fmt == PixelFormat::RGBA) ? 4 : 3;
    std::string px = read_text(a[0]);
    if (px.size() != static_cast<size_t>(w) * h * cn) throw std::runtime_error(std::string(a[0]) + ": wrong size");
    int in_w = std::stoi(a[4]), in_h = std::stoi(a[5]);
    Letterbox lb = compute_letterbox(w, h, in_w, in_h);
    std::vector<float> out(static_cast<size_t>(3) * in_w * in_h);
    const uint8_t* pixels = reinterpret_cast<const uint8_t*>(px.data());
    std::vector<uint8_t> straight;
    if (premul && unpremultiply(pixels, w, h, w * cn, straight)) pixels = straight.data();
    fill_input(pixels, w, h, w * cn, fmt, lb, std::stoi(a[6]), a[7], out.data());
    std::ofstream f(a[8], std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
    return f ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string cmd = argc > 1 ? argv[1] : "";
        if (cmd == "geometry" && argc == 6) return cmd_geometry(argv + 2);
        if (cmd == "metadata" && argc == 3) return cmd_metadata(argv[2]);
        if (cmd == "postprocess" && argc == 3) return cmd_postprocess(argv[2]);
        if (cmd == "fill" && argc == 11) return cmd_fill(argv + 2);
        std::fprintf(stderr, "usage: yolox_core_host geometry|metadata|postprocess|fill ... (see source)\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
