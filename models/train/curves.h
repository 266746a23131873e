// models/train/curves.h: a run's pictures without a plotting library. curves_svg draws training loss, validation
// loss and the task's validation metric against step (two panels: losses, metric) as a hand-written SVG with axes,
// ticks and a legend; run_index_html is the run folder's index.html (the curves, the latest validation picture,
// summary.json). Both compute text only; the training loop (engine.cpp) writes them.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace convlab {

struct CurveSeries {
  std::string name;                               // the legend text: "train loss", "val mIoU"
  std::vector<std::pair<double, double>> points;  // (step, value), finite values only
};

// The series of a run's metrics.jsonl records: "train loss" (or "train loss_d" / "train loss_g" for the GAN) from
// the rows with "split": "train", "val loss" and "val <metric>" from the other rows. `metric` may be empty.
std::vector<CurveSeries> curve_series(const std::vector<nlohmann::json>& records, const std::string& metric);

// The SVG document: the loss series (names ending in "loss", "loss_d", "loss_g") in the upper panel, the others in
// the lower one; a panel without points says "no data yet".
std::string curves_svg(const std::vector<CurveSeries>& series, const std::string& title);

// index.html of a run folder: `title`, curves.svg, `picture` (a file name in the folder, "" for none) and the
// text of summary.json (escaped; "" when there is none yet).
std::string run_index_html(const std::string& title, const std::string& picture, const std::string& summary_json);

// "&", "<", ">", '"' escaped for XML / HTML text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace convlab
