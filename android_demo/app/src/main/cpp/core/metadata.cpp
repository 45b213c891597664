// metadata.json (yolox_edge/export/metadata.py, schema_version 1) -> ModelConfig.
#include <stdexcept>

#include "detector_core.h"
#include "json.h"

namespace yolox {

namespace {

constexpr int kSchemaVersion = 1;

[[noreturn]] void bad(const std::string& field, const std::string& what) {
    throw std::runtime_error("metadata.json: " + field + ": " + what);
}

template <typename F>
auto field(const std::string& name, F&& get) -> decltype(get()) {
    try {
        return get();
    } catch (const json::ParseError&) {
        throw;
    } catch (const std::runtime_error& e) {
        bad(name, e.what());
    }
}

}  // namespace

ModelConfig parse_metadata(const std::string& text) {
    json::Value m = json::parse(text);
    if (!m.is_object()) bad("(top level)", "not an object");
    ModelConfig cfg;

    int schema = field("schema_version", [&] { return m.at("schema_version").as_int(); });
    if (schema > kSchemaVersion) bad("schema_version", "newer than this app understands; update the app");

    cfg.name = field("model", [&] { return m.at("model").as_string(); });
    cfg.precision = field("precision", [&] { return m.at("precision").as_string(); });

    const json::Value& pre = field("preprocess", [&]() -> const json::Value& { return m.at("preprocess"); });
    const json::Value* size = m.find("input_size");
    if (!size) size = pre.find("input_size");
    if (!size) bad("input_size", "missing");
    field("input_size", [&] {
        const auto& hw = size->as_array();
        if (hw.size() != 2) throw std::runtime_error("expected [height, width]");
        cfg.input_h = hw[0].as_int();
        cfg.input_w = hw[1].as_int();
        if (cfg.input_h <= 0 || cfg.input_w <= 0) throw std::runtime_error("must be positive");
        return 0;
    });
    if (const json::Value* v = pre.find("pad_value")) cfg.pad_value = field("preprocess.pad_value", [&] { return v->as_int(); });
    // a pixel value: the SDK pads uint8 canvases and refuses another; here it was fed as it was
    if (cfg.pad_value < 0 || cfg.pad_value > 255) bad("preprocess.pad_value", "must be 0..255 (a pixel value)");
    if (const json::Value* v = pre.find("channel_order"))
        cfg.channel_order = field("preprocess.channel_order", [&] { return v->as_string(); });
    if (cfg.channel_order != "BGR" && cfg.channel_order != "RGB") bad("preprocess.channel_order", "expected BGR or RGB");
    // null is absent; anything but the string top-left is refused (as yolox-edge refuses it)
    if (const json::Value* v = pre.find("letterbox"); v && !v->is_null() && (!v->is_string() || v->as_string() != "top-left"))
        bad("preprocess.letterbox", "only top-left letterbox is supported");
    // The app fills the input with 0..255 pixels, planar (NCHW): a model that states another value
    // range or layout is refused, not run on values it was not made for.
    if (const json::Value* v = pre.find("value_range"); v && !v->is_null())
        field("preprocess.value_range", [&] {
            const auto& r = v->as_array();
            if (r.size() != 2 || r[0].as_number() != 0.0 || r[1].as_number() != 255.0)
                throw std::runtime_error("only [0, 255] is supported (the app feeds pixels as they are)");
            return 0;
        });
    if (const json::Value* v = pre.find("layout"); v && !v->is_null())
        if (field("preprocess.layout", [&] { return v->as_string(); }) != "NCHW")
            bad("preprocess.layout", "only NCHW is supported");
    // The app feeds 0..255 pixels as they are; a model that wants mean/std is not one of ours.
    for (const char* k : {"mean", "std"})
        if (const json::Value* v = pre.find(k); v && !v->is_null())
            bad(std::string("preprocess.") + k, "normalisation is not supported by this app");

    field("class_names", [&] {
        for (const auto& n : m.at("class_names").as_array()) cfg.class_names.push_back(n.as_string());
        return 0;
    });
    if (cfg.class_names.empty()) bad("class_names", "empty");

    const json::Value& graph = field("graph", [&]() -> const json::Value& { return m.at("graph"); });
    cfg.output_kind = field("graph.output_kind", [&] { return graph.at("output_kind").as_string(); });
    if (cfg.output_kind != "topk" && cfg.output_kind != "decoded")
        bad("graph.output_kind", "'" + cfg.output_kind + "' needs the decode on the host; export with the decode in the graph");
    if (const json::Value* v = graph.find("box_format"); v && v->as_string() != "xyxy")
        bad("graph.box_format", "expected xyxy");

    cfg.input_name = field("input.name", [&] { return m.at("input").at("name").as_string(); });
    field("outputs", [&] {
        for (const auto& o : m.at("outputs").as_array()) {
            const std::string& role = o.at("name").as_string();
            const json::Value* blob = o.find("blob");
            std::string name = (blob && blob->is_string()) ? blob->as_string() : role;
            if (role == "boxes") cfg.boxes_output = name;
            else if (role == "scores") cfg.scores_output = name;
            else if (role == "labels") cfg.labels_output = name;
        }
        return 0;
    });
    if (cfg.boxes_output.empty() || cfg.scores_output.empty()) bad("outputs", "needs boxes and scores");
    if (cfg.output_kind == "topk" && cfg.labels_output.empty()) bad("outputs", "a top-K graph needs labels");

    field("files", [&] {
        const json::Value& files = m.at("files");
        if (!files.is_object()) throw std::runtime_error("expected an object");
        for (size_t i = 0; i < files.keys().size(); ++i) {
            cfg.model_files.push_back(files.keys()[i]);
            cfg.file_sha256.emplace_back(files.keys()[i], files.values()[i].as_string());
        }
        return 0;
    });

    // Thresholds are optional (a bundle records the ones it was validated with).
    if (const json::Value* pp = m.find("postprocess"); pp && pp->is_object()) {
        Thresholds& t = cfg.thresholds;
        if (const json::Value* v = pp->find("conf")) t.conf = static_cast<float>(field("postprocess.conf", [&] { return v->as_number(); }));
        if (const json::Value* v = pp->find("nms")) t.nms = static_cast<float>(field("postprocess.nms", [&] { return v->as_number(); }));
        if (const json::Value* v = pp->find("max_det")) t.max_det = field("postprocess.max_det", [&] { return v->as_int(); });
        if (const json::Value* v = pp->find("agnostic")) t.agnostic = field("postprocess.agnostic", [&] { return v->as_bool(); });
    }
    return cfg;
}

}  // namespace yolox
