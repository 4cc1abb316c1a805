"""Rebuilds RESULTS.md (and the data-scale table in docs/large-corpora.md) from benchmarks/results/*.json.

    python benchmarks/report.py

Numbers are never typed by hand: every row here is read from a JSON file written by a benchmark script.
"""

from __future__ import annotations

import json
import re

from common import RESULTS, ROOT

TARGETS = {
    "ptb_budget": "test ppl ≤ 100 in 15 min",
    "wikitext2_budget": "test ppl ≤ 150 in 30 min",
    "lm_throughput": "≥ 0.95 × bare PyTorch",
    "multi30k_budget": "BLEU ≥ 35 in 60 min",
    "multi30k_decode_speed": "≥ 100 sent/s at beam 5",
    "sst2_budget": "dev acc ≥ 85% in 20 min",
    "sst2_finetune": "dev acc ≥ 88% in 20 min",
    "sst2_finetune_ensemble": "dev acc ≥ 88% in 20 min",
    "sst2_budget_ensemble": "dev acc ≥ 85% in 20 min",
    "sst2_budget_vectors": "dev acc ≥ 85% in 20 min (vectors included)",
    "sst2_budget_vectors_ensemble": "dev acc ≥ 85% in 20 min (vectors included)",
    "imdb_budget": "test acc ≥ 90% in 60 min",
    "movie_lm": "ULMFiT's LM stage (timed separately)",
    "movie_lm_70": "ULMFiT's LM stage, continued (timed separately)",
    "movie_lm_bwd": "ULMFiT's backward LM stage (timed separately)",
    "movie_lm_bwd_70": "ULMFiT's backward LM stage, continued (timed separately)",
    "gpu_check": "runs on one GPU in < 8 min",
    "import_time": "≤ 0.5 s over import torch, no Lightning",
    "softmax_ab": "> 1 (the new adaptive-softmax NLL is faster)",
    "recheck": "all: bundles of earlier commits give their recorded figures",
    "forecast_co2": "automatic configuration (same budget everywhere): test MASE ≤ the best peer's (AutoARIMA, AutoETS "
                    "included); 10-90 % band coverage in [0.75, 0.85]",
    "forecast_sunspots": "automatic configuration (same budget everywhere): test MASE ≤ the best peer's (AutoARIMA, "
                         "AutoETS included); 10-90 % band coverage in [0.75, 0.85]",
    "forecast_dev": "development series only (where the tuner's method is chosen): geometric mean over the series of "
                    "test MASE / the best peer's, per variant FOLDSxMEMBERS",
    "forecast_dev_longer": "two longer development series, the same comparison",
    "forecast_dev_calibration": "the six development series: the band calibrated on three blocks (1x5c3)",
    "forecast_dev_linear": "six development series and the fertility panel: the linear cell searched or not (1x5 "
                           "against 1x5-nolinear); the band in series or local units",
    "forecast_dev_trials": "the seven development sets: at least 500 optimizer steps per fit, or 40 trials instead "
                           "of 20 (against forecast_dev_linear's 1x5-nolinear)",
    "forecast_dev_fewer_trials": "the seven development sets: 10 trials instead of 20 (against forecast_dev_linear's "
                                 "1x5-nolinear)",
    "forecast_dev_members": "the seven development sets: ten members instead of five, or 15 epochs instead of 30 "
                            "(against forecast_dev_linear's 1x5-nolinear)",
    "forecast_dev_portfolio": "the seven development sets: a portfolio of the other sets' best configurations alone, "
                              "or tried first before the search (against forecast_dev_linear's 1x5-nolinear)",
    "forecast_dev_online": "the seven development sets, the default method: the band's coverage with and without "
                           "the windows after the fit added to its calibration (online / offline)",
    "forecast_dev_power": "the four development sets the range-mean rule log-transforms: the transform's prototype "
                          "(against forecast_dev_linear's 1x5-nolinear on the same four: 1.071)",
    "forecast_dev_transform": "the seven development sets, the default method with data.transform auto (against "
                              "forecast_dev_linear's 1x5-nolinear: 1.1038)",
    "forecast_dev_spread": "the three development sets where the two range-mean rules pick differently: square root "
                           "(the spread around each chunk's line) against log (the raw spread); none for reference",
    "forecast_dev_defaults": "the nine development sets (the employment and Australian production panels added), the "
                             "current defaults: a record, not a decision",
    "forecast_dev_adaptive": "the nine development sets' bundles (forecast_dev_defaults): the band's coverage online "
                             "at the nominal level and adapting at rates 0.01 and 0.05",
    "forecast_dev_forward": "the nine development sets: forward selection of the ensemble (against "
                            "forecast_dev_defaults' five best: 1.0109); its `online` coverage is the bundle's own "
                            "(adapting) band",
    "forecast_dev_within": "the fertility panel with log, the one pick a within-series range-mean slope would change "
                           "(against its 1.3933 without a transform in forecast_dev_defaults)",
    "forecast_dev_choose": "the six development sets the range-mean rule transforms: the search choosing the "
                           "transform between the rule's pick and none (against forecast_dev_defaults' 0.9482 on "
                           "the same six)",
    "forecast_dev_gentle": "the three development sets where the range-mean rule picks log, with the square root "
                           "instead (against forecast_dev_defaults' 0.8464 with log on the same three)",
    "forecast_dev_seeds": "the nine development sets: each ensemble member refitted from three seeds (against "
                          "forecast_dev_defaults' one seed: 1.0109)",
    "forecast_dev_damped90": "the nine development sets: every network's forecast relative to a damped-trend "
                             "baseline, φ 0.9 (against forecast_dev_defaults' 1.0109 without)",
    "forecast_dev_damped80": "the nine development sets: the damped-trend baseline with φ 0.8 (against "
                             "forecast_dev_defaults' 1.0109 without)",
    "forecast_dev_macro_history": "diagnostic: the default tuner on the macro panel's history before its test part "
                                  "(test 1993Q4-1999Q3, the benchmark's validation part), against the peers",
    "forecast_dev_recency50": "the ten development sets: training windows weighted by recency, half-life half the "
                              "training part (against 1.0064 without)",
    "forecast_dev_recency25": "the ten development sets: recency weighting with a half-life of a quarter of the "
                              "training part (against 1.0064 without)",
    "forecast_compare_recency50": "forecast_dev_recency50 against forecast_dev_defaults + forecast_dev_macro_history",
    "forecast_compare_recency25": "forecast_dev_recency25 against forecast_dev_defaults + forecast_dev_macro_history",
    "forecast_dev_fresh": "two fresh development panels (arrivals, accommodation), the defaults: the baseline of the "
                          "panel recency rule's confirmation",
    "forecast_dev_fresh_recency50": "the two fresh panels with recency weighting (half-life 0.5), the rule formed on "
                                    "the ten sets (against forecast_dev_fresh)",
    "forecast_compare_fresh_recency50": "forecast_dev_fresh_recency50 against forecast_dev_fresh: the confirmation "
                                        "(pre-registered in 72f169d)",
    "forecast_dev_seasonal_single": "the six single development series: every network's forecast relative to the "
                                    "seasonal-naive one (against forecast_dev_defaults)",
    "forecast_dev_seasonal_panels": "the six development panels (recency auto): the seasonal-naive baseline (against "
                                    "forecast_dev_recency50 and forecast_dev_fresh_recency50)",
    "forecast_compare_seasonal": "the seasonal-naive baseline against the defaults on the twelve development sets",
    "forecast_dev_defaults12_single": "the defaults at 8307b53 on the six single development series (a clean "
                                      "baseline; reproduces forecast_dev_defaults)",
    "forecast_dev_defaults12_panels": "the defaults at 8307b53 (recency auto) on the six development panels (a clean "
                                      "baseline; reproduces forecast_dev_recency50 / forecast_dev_fresh_recency50)",
    "forecast_compare_defaults12": "the defaults at 8307b53 on the twelve development sets against the records that "
                                   "made the baseline of forecast_compare_seasonal (equal on every set)",
    "forecast_dev_rerun_single": "the defaults at cc54cd9 on the six single development series, on a CPU with native "
                                 "bf16 under the AVX2 emulation: reproduces forecast_dev_defaults12_single",
    "forecast_dev_rerun_panels": "the defaults at cc54cd9 on the six development panels, on a CPU with native bf16 "
                                 "under the AVX2 emulation: reproduces forecast_dev_defaults12_panels",
    "forecast_rescore_decay": "the twelve development sets' default bundles (forecast_dev_rerun_*): the online band "
                              "with scores weighted by age (+decayK) against the default adaptive band (rule in "
                              "d1acff1)",
    "forecast_dev_searchrecency_panels_a": "three development panels: each panel's search drawing the recency "
                                           "half-life too (against forecast_dev_rerun_panels)",
    "forecast_dev_searchrecency_panels_b": "the other three development panels: the same",
    "forecast_compare_searchrecency": "the recency half-life searched against the defaults on the six development "
                                      "panels (rule in ff281c1)",
    "forecast_precision": "fixed forecaster configurations fitted in bf16-mixed and 32-true, alternating, on a CPU "
                          "with native bf16: pin 32-true unless bf16 is ≥ 5 % faster (rule in 1a5787e)",
    "forecast_rescore_median": "the twelve development sets' default bundles (forecast_dev_rerun_*): the networks' "
                               "median against their mean (rule in 00944fe)",
    "forecast_rescore_origin": "the twelve development sets' default bundles, the networks' median: the adaptive "
                               "level moved once per origin time against once per window (rule in 558f368)",
    "forecast_rescore_medianpoint": "the twelve development sets' default bundles: the point by the networks' median "
                                    "and the band's edges by their mean, against the median of both (rule in 9d89db6)",
    "forecast_dev_median_single": "the defaults at 97525c0 (the networks' median, calibrated on itself) on the six "
                                  "single development series, under the AVX2 emulation",
    "forecast_dev_median_panels": "the defaults at 97525c0 (the networks' median, calibrated on itself) on the six "
                                  "development panels, under the AVX2 emulation",
    "forecast_compare_median": "the networks' median against their mean, each calibrated on itself, on the twelve "
                               "development sets (forecast_dev_median_* against forecast_dev_rerun_*; rule in 97525c0)",
    "forecast_rescore_series": "the six development panels' default bundles (forecast_dev_median_panels): an adaptive "
                               "level per series against one per panel (rule in 95c2d69)",
    "forecast_dev_searchdropout_single": "the six single development series: the search drawing the dropout too "
                                         "(against forecast_dev_median_single)",
    "forecast_dev_searchdropout_panels": "the six development panels: the same (against forecast_dev_median_panels)",
    "forecast_compare_searchdropout": "the dropout searched against the defaults on the twelve development sets (rule "
                                      "in 0561580)",
    "forecast_rescore_rate": "the twelve development sets' default bundles (forecast_dev_median_*): the adaptive "
                             "level's rate 0.05 against 0.1 and 0.2 (rule in 66566f1)",
    "forecast_dev_compact_single": "the six single development series: the compact search space (against "
                                   "forecast_dev_median_single)",
    "forecast_dev_compact_panels": "the six development panels: the same (against forecast_dev_median_panels)",
    "forecast_compare_compact": "the compact search space against the defaults on the twelve development sets (rule in "
                                "21a300e)",
    "forecast_pool_paths": "a diagnostic: the twelve development sets' bundles of three searches along different paths "
                           "(the defaults, the dropout searched, the compact space) combined by the median of their "
                           "point forecasts, against each alone",
    "forecast_dev_seed1235_single": "a diagnostic: the defaults with the recipe's seed 1235 (the search's sampler and "
                                    "every fit) on the six single development series",
    "forecast_dev_seed1235_panels": "a diagnostic: the same on the six development panels",
    "forecast_dev_seed1236_single": "a diagnostic: the defaults with the recipe's seed 1236 on the six single "
                                    "development series",
    "forecast_dev_seed1236_panels": "a diagnostic: the same on the six development panels",
    "forecast_pool_seeds": "a diagnostic: the defaults' bundles with seeds 1234 and 1235 combined by the median of "
                           "their point forecasts, against each alone, on the twelve development sets",
    "forecast_pool_seeds3": "a diagnostic: the same with seeds 1234, 1235 and 1236",
    "forecast_dev_searches3_single": "the six single development series: three pooled searches (seeds 1237-1239)",
    "forecast_dev_searches3_panels": "the six development panels: the same",
    "forecast_compare_searches3": "three pooled searches against the defaults' seed 1234 on the twelve development "
                                  "sets; the rule (1383065) compared it with the three seeds' typical 1.0769 "
                                  "(forecast_pool_seeds3)",
    "forecast_dev_pair_single": "the six single development series: two pooled searches of 10 trials each, 3 members "
                                "each (a single search's trial count), search pairs seeded 1234, 1236 and 1238",
    "forecast_dev_pair_panels": "the six development panels: the same",
    "forecast_dev_seeds5_single": "a diagnostic: the defaults with the recipe's seeds 1237 and 1238 on the six single "
                                  "development series",
    "forecast_dev_seeds5_panels": "a diagnostic: the same on the six development panels",
    "forecast_pool_seeds5": "the defaults over five seeds (1234-1238) on the twelve development sets: each alone, "
                            "their geometric mean (the baseline of the rule in e3bc3ed) and the five pooled",
    "forecast_pool_pair": "two pooled searches at a single search's trial count over three seeds on the twelve "
                          "development sets: each alone and their geometric mean (rule in e3bc3ed)",
    "forecast_dev_compactseeds_single": "the six single development series: the compact search space with seeds 1235 "
                                        "and 1236",
    "forecast_dev_compactseeds_panels": "the six development panels: the same",
    "forecast_pool_compact": "the compact search space over three seeds (1234-1236) on the twelve development sets: "
                             "each alone and their geometric mean (rule in a7219e8)",
    "forecast_dev_dropoutseeds_single": "the six single development series: the dropout searched with seeds 1235 and "
                                        "1236",
    "forecast_dev_dropoutseeds_panels": "the six development panels: the same",
    "forecast_pool_dropout": "the dropout searched over three seeds (1234-1236) on the twelve development sets: each "
                             "alone and their geometric mean (rule in 2b1df06)",
    "forecast_dev_searches3m2_single": "the six single development series: three pooled searches (seeds 1240-1242), "
                                       "the 2 best of each refitted",
    "forecast_dev_searches3m2_panels": "the six development panels: the same",
    "forecast_pool_searches3m2": "three pooled searches with two members each on the twelve development sets: its "
                                 "figures for the rule in 72b3a11 (against forecast_pool_seeds5)",
    "forecast_dev_searches3t10_a": "the six single development series and the fertility, arrivals and accommodation "
                                   "panels: three pooled searches of 10 trials, the 5 best of each refitted (seeds "
                                   "1243, 1246, 1249)",
    "forecast_dev_searches3t10_b": "the employment, Australian production and macro history panels: the same",
    "forecast_dev_searches3s_a": "the six single development series and the fertility, arrivals and accommodation "
                                 "panels: three pooled searches of 20 trials, the 5 best of each refitted (seeds 1252, "
                                 "1255)",
    "forecast_dev_searches3s_b": "the employment, Australian production and macro history panels: the same",
    "forecast_pool_searches3": "three pooled searches (20 trials, five members each) over three seeds (1237, 1252, "
                               "1255) on the twelve development sets: the figures for the rule in 04e7fe3 (against "
                               "forecast_pool_seeds5)",
    "forecast_dev_searches3_sidebyside": "the time of the rule in 04e7fe3: three pooled searches (seed 1237) run side "
                                         "by side on the 2 cores (--tune_workers 2), alone on the machine, on the two "
                                         "sets that took longest one after another (employment panel, elnino)",
    "forecast_pool_searches3t10": "three pooled searches of 10 trials with five members each, over three seeds, on the "
                                  "twelve development sets: the figures for the rule in 023d8c6 (against "
                                  "forecast_pool_seeds5)",
    "forecast_dev_searches4_a": "the six single development series and the fertility, arrivals and accommodation "
                                "panels: four pooled searches of 20 trials, the 5 best of each refitted (seeds 1260, "
                                "1264, 1268)",
    "forecast_dev_searches4_b": "the employment, Australian production and macro history panels: the same",
    "forecast_pool_searches4": "four pooled searches (20 trials, five members each) over three seeds (1260, 1264, "
                               "1268) on the twelve development sets: the figures for the rule in e2ee6af (against "
                               "forecast_pool_searches3)",
    "forecast_compare_damped90": "forecast_dev_damped90 against forecast_dev_defaults on the same nine sets",
    "forecast_compare_damped80": "forecast_dev_damped80 against forecast_dev_defaults on the same nine sets",
    "forecast_compare_choose": "forecast_dev_choose against forecast_dev_defaults on the same six sets (the decision's "
                               "two sides; coverage like for like: the online band at the nominal level)",
    "forecast_compare_gentle": "forecast_dev_gentle against forecast_dev_defaults on the same three sets",
    "forecast_compare_seeds": "forecast_dev_seeds against forecast_dev_defaults on the same nine sets",
    "forecast_combination": "development series: fixed equal-weight combinations with AutoARIMA and AutoETS (evidence "
                            "for a next step)",
    "forecast_co2_avx512": "forecast_co2 re-measured on a CPU with AVX512-BF16 (fp32, native kernels): the same "
                           "targets",
    "forecast_sunspots_avx512": "forecast_sunspots re-measured on a CPU with AVX512-BF16 (fp32, native kernels)",
    "forecast_macro_panel_avx512": "forecast_macro_panel re-measured on a CPU with AVX512-BF16 (fp32, native kernels)",
    "forecast_macro_panel": "one global model, automatic configuration: MASE averaged over the series ≤ the best "
                            "per-series peer's; 10-90 % band coverage in [0.75, 0.85]",
    "imdb_rating": "test MAE below the training mean's and the classifier's expected rating's",
    "serve_load": "ratio_to_in_process ≥ 0.7, 0 failed or lost requests, malformed ones 4xx",
    "serve_faults": "0 failed requests with 2 model processes and 2 kills; each restarted ≤ 10 s; throughput after "
                    "within 10 % of before",
    "decode_kernels": "> 1 (the decoding shortcuts are faster), on AVX-512 and AVX2 kernels",
    "multi30k_average_ensemble": "BLEU of the averaged checkpoints and of the ensemble, against the single model",
    "multi30k_int8": "sentences/s ratio ≥ 1.5, BLEU drop ≤ 0.5",
    "imdb_int8": "accuracy drop ≤ 0.3 points; texts/s ratio",
    "ptb_int8": "perplexity rise ≤ 2%",
    "cells_speed": "≥ 0.5 × nn.LSTM tokens/s for both cells",
    "ptb_char_budget": "a CPU recipe trained in 15 min on 2 cores, whole command bounded; bpc",
    "ptb_cells": "PTB test ppl of lstm / lstm_peephole / lstm_layernorm at equal wall time (15 min each)",
    "multi30k_distill": "student ≤ 1/3 of the teacher's parameters, within 1 BLEU of it, ≥ 2x faster at beam 5",
    "sst2_distill": "the student's dev and test accuracy against the forward + backward ensemble's (reported)",
    "ptb_vs_textbook": "ratio ≤ 0.90 (seq2text / textbook test ppl at equal wall time), seq2text ppl ≤ 105",
    "wikitext2_vs_textbook": "ratio ≤ 0.90 (seq2text / textbook test ppl at equal wall time), seq2text ppl ≤ 150",
    "lm_step_profile": "where a training step's time goes (operators' shares)",
    "lm_step_profile_before": "where a training step's time went before this change (operators' shares)",
    "lm_data_scale": "peak RSS of each DDP process flat (≤ 1.10× from 10M to 100M tokens); first step ≤ 5 s at 100M",
}
TARGETS.update({f"{name}_fp32": target for name, target in list(TARGETS.items())})  # the same bar in fp32
ALSO = ("test_acc", "dev_acc", "ensemble", "member_dev_acc", "chrf", "vectors_seconds", "total_seconds",
        "total_train_seconds", "lm_train_seconds", "lm_bundle", "mase_seq2text_refit", "mase_arima", "mase_ets",
        "mase_darts_rnn", "mase_seasonal_naive", "mase_autoarima", "mase_autoets", "best_peer_mase",
        "mase_recipe_example", "interval_coverage_10_90", "interval_coverage_10_90_uncalibrated", "tune_trials",
        "tune_folds", "tune_members", "summary", "geometric_mean_mase", "wins",
        "test_rmse", "mae_train_mean",
        "mae_classifier_expected", "errors", "ratio_to_in_process", "ratio_to_in_process_range", "p50_latency_ms",
        "p99_latency_ms",
        "ratio_to_in_process_same_max_batch", "dynamic_requests_per_sec", "ratio_continuous_to_dynamic",
        "workers", "one_worker_requests_per_sec", "ratio_workers_to_one",
        "average_gain", "ensemble_gain", "bleu_drop", "accuracy_drop", "bundle_bytes", "ratios", "valid_bpc",
        "wall_seconds", "rss_ratios", "first_step_after_imports_s_at_largest", "prepare_mb_per_sec_at_largest",
        "prepare_speed_ratio_to_sentencepiece_one_core", "best_cell",
        "test_ppl_per_cell", "teacher_bleu", "bleu_gap", "param_ratio", "speed_ratio", "ensemble_dev_acc",
        "ensemble_test_acc", "teacher_dev_acc", "speedups", "seq2text_ppl", "textbook_ppl", "seq2text_valid_ppl",
        "textbook_valid_ppl", "seq2text_tokens_per_sec", "textbook_tokens_per_sec", "seq2text_epochs",
        "textbook_epochs", "ms_per_step", "restart_seconds", "throughput_ratio_after_to_before",
        "requests_per_sec_during_faults", "load_average_1m")  # shown beside the main value



def _command(entry: dict) -> str:
    """The record's command as run: the kernel/thread environment it pinned first (ATEN_CPU_CAPABILITY=avx2 ...)."""
    pinned = " ".join(f"{k}={v}" for k, v in entry.get("environment", {}).items())
    return f"{pinned} {entry['command']}" if pinned else entry["command"]

def also(entry: dict) -> str:
    return ", ".join(f"{k}={entry[k]}" for k in ALSO if entry.get(k) is not None and k != entry["metric"])


def rows() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def kind(entry: dict) -> str:
    """The kind of CPU and the precision a record ran with ("not recorded" before issue 11 asked for them)."""
    if entry.get("cpu_capability") is None and entry.get("precision") is None:
        return "not recorded"
    return f"{entry.get('cpu_capability', '?')}, {entry.get('precision', '?')}, {entry.get('threads', '?')} threads"


def table(entries: list[dict]) -> str:
    lines = ["| benchmark | metric | value | also | target | split | train s | machine | CPU kernels, precision | "
             "scheduler | torch | commit | date |",
             "|---|---|---:|---|---|---|---:|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['benchmark']} | {e['metric']} | {e['value']} | {also(e)} | "
                     f"{TARGETS.get(e['benchmark'], '')} | {e.get('split', '')} | {e.get('train_seconds') or ''} | "
                     f"{e['machine']} | {kind(e)} | {e.get('scheduler', '')} | {e['torch']} | "
                     f"{e['commit']} | {e['date']} |")
    return "\n".join(lines)


def trained(entry: dict) -> str:
    """'N s of training, ' when the record has a training time."""
    return f"{entry['train_seconds']} s of training, " if entry.get("train_seconds") else ""


def side_by_side(entries: list[dict]) -> str:
    """Each benchmark that has an `_fp32` twin: the native-bf16 figure and the fp32 figure in one row."""
    by_name = {e["benchmark"]: e for e in entries}
    lines = ["| benchmark | target | bf16-mixed (CPU with native bf16) | fp32 (what an AVX2-only CPU runs) |",
             "|---|---|---:|---:|"]
    for name, fp32 in by_name.items():
        base = by_name.get(name.removesuffix("_fp32")) if name.endswith("_fp32") else None
        if base is not None:
            lines.append(f"| {base['benchmark']} | {TARGETS.get(base['benchmark'], '')} | {base['value']} "
                         f"({trained(base)}{base['machine']}, {base['date'][:10]}) | {fp32['value']} "
                         f"({trained(fp32)}{fp32['machine']}, {kind(fp32)}, {fp32['date'][:10]}) |")
    return "\n".join(lines)


# benchmarks whose value is a ratio of two things measured one after the other (or alternating) in the same run
SAME_RUN = {
    "ptb_vs_textbook": "seq2text's test ppl / the textbook PyTorch LSTM's, both trained to the same budget",
    "wikitext2_vs_textbook": "seq2text's test ppl / the textbook PyTorch LSTM's, both trained to the same budget",
    "lm_throughput": "seq2text's Lightning loop tokens/s / a bare PyTorch loop's, alternating",
    "decode_kernels": "decoding shortcuts against the plain operators, alternating",
    "softmax_ab": "the adaptive-softmax NLL against the previous one, alternating",
    "cells_speed": "each cell's tokens/s / nn.LSTM's",
    "serve_load": "served requests/s / in-process translation of the same texts",
}
SAME_RUN_KEY = {"serve_load": "ratio_to_in_process"}  # where the ratio is not the record's `value`


def same_run(entries: list[dict]) -> str:
    """The records whose claim is a ratio measured within one run (robust to the machine's day-to-day speed)."""
    lines = ["| benchmark | ratio | value | load (1 min) at start | machine | CPU kernels, precision | date |",
             "|---|---|---:|---:|---|---|---|"]
    for e in entries:
        what = SAME_RUN.get(e["benchmark"].removesuffix("_fp32"))
        if what:
            ratio = e.get(SAME_RUN_KEY.get(e["benchmark"], "value"), e["value"])
            lines.append(f"| {e['benchmark']} | {what} | {ratio} | {e.get('load_average_1m', 'not recorded')} "
                         f"| {e['machine']} | {kind(e)} | {e['date'][:10]} |")
    return "\n".join(lines)


def data_scale(entries: list[dict]) -> str:
    """lm_data_scale's figures per corpus size (docs/large-corpora.md)."""
    entry = next((e for e in entries if e["benchmark"] == "lm_data_scale"), None)
    if entry is None:
        return "(run benchmarks/lm_data_scale.py)"
    lines = ["| corpus | text MB | prepare s (MB/s, 2 processes) | cache MB | first step, 1 process: from start / "
             "after imports (s) | first step, 2-process DDP: after imports (s) | peak RSS per DDP process (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for size, row in entry["per_size"].items():
        one, ddp = row["fit_one_process"], row["fit_ddp_2"]
        lines.append(f"| {row['tokens']:,} tokens ({size}) | {row['bytes'] / 1e6:.0f} | {row['prepare']['seconds']} "
                     f"({row['prepare']['mb_per_sec']}) | {row['prepare']['cache_mb']} | {one['first_step_s']} / "
                     f"{one['first_step_after_imports_s']} | {ddp['first_step_after_imports_s']} | "
                     f"{' / '.join(map(str, ddp['peak_rss_mb']))} |")
    small = next(iter(entry["per_size"].values()))
    lines.append(f"\nOn the smallest corpus, in the same run: prepare on 1 process "
                 f"{small['prepare_one_process']['mb_per_sec']} MB/s; SentencePiece's own `encode` on one core\n"
                 f"(text already in memory) {small['sentencepiece_encode_one_core']['mb_per_sec']} MB/s.\n"
                 f"{entry['machine']}, {kind(entry)}, torch {entry['torch']}, commit {entry['commit']}, "
                 f"{entry['date']}; `{_command(entry)}`.")
    return "\n".join(lines)


def main() -> None:
    entries = rows()
    body = table(entries)
    commands = "\n".join(f"- `{e['benchmark']}`: `{_command(e)}`" for e in entries)
    (ROOT / "RESULTS.md").write_text(
        "# Results\n\nGenerated by `python benchmarks/report.py` from `benchmarks/results/*.json`; "
        "do not edit by hand. `CPU kernels, precision` is what the run recorded (`not recorded`: the record was "
        "written before runs recorded their precision; the LM and translation recipes then set bf16-mixed, and "
        "ran on a CPU with native bf16).\n\n## Ratios measured in the same run\n\n"
        "These machines' speed wanders from day to day; a ratio "
        "of two runs made one after the other in one script is the figure to trust.\n\n" + same_run(entries)
        + "\n\n## bf16 and fp32\n\n" + side_by_side(entries) + "\n\n## Every record\n\n" + body + "\n\nCommands:\n\n"
        + commands + "\n")
    corpora = ROOT / "docs" / "large-corpora.md"  # the data-scale table lives with the page it illustrates
    scale = f"<!-- data_scale:start -->\n{data_scale(entries)}\n<!-- data_scale:end -->"
    text = corpora.read_text(encoding="utf-8")
    corpora.write_text(re.sub(r"<!-- data_scale:start -->.*<!-- data_scale:end -->", lambda _: scale, text,
                              flags=re.S), encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
