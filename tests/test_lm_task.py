import json
import math
import random
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import yaml

import seq2text
from seq2text.cli import main
from seq2text.data.language_modeling import LMDataModule, encode_stream
from seq2text.tasks import LanguageModelTask, WallClockBudget
from seq2text.tasks.callbacks import parse_duration
from seq2text.tasks.config import Optimization, Regularization
from seq2text.text.tokenizer import EOS_ID, UNK_ID
from tests.conftest import QUIET, REPO, TINY_LM, fit, perturbed, run_fit, toy_lines


@pytest.fixture(scope="module")
def toy_bundle(lm_bundle: Path) -> Path:
    return lm_bundle


def test_fit_writes_a_bundle_whose_perplexity_equals_the_test_run(toy_bundle: Path, toy_lm_dir: Path) -> None:
    metrics = json.loads((toy_bundle / "metrics.json").read_text())
    assert {"val/ppl", "test/ppl", "test/bpc", "global_step"} <= set(metrics)
    lm = seq2text.load(toy_bundle)
    assert isinstance(lm, seq2text.LanguageModel)
    lines = (toy_lm_dir / "ptb.test.txt").read_text().splitlines()
    assert lm.perplexity(lines) == pytest.approx(metrics["test/ppl"], rel=1e-4)
    assert metrics["test/ppl"] < lm.tokenizer.vocab_size  # better than uniform over the ids


def test_score_and_generate(toy_bundle: Path) -> None:
    lm = seq2text.LanguageModel.load(toy_bundle)
    scores = lm.score(["the cat sat on the mat", ""])
    assert all(math.isfinite(s) and s < 0 for s in scores) and scores[1] > scores[0]  # fewer tokens, likelier
    assert lm.generate("the cat", 8, seed=1, stop_at_eos=False) == lm.generate("the cat", 8, seed=1, stop_at_eos=False)
    assert len(lm.generate("", 6, seed=0, stop_at_eos=False).split()) == 6  # empty prompt: start of a line
    assert lm.generate("the", 5, temperature=0) == lm.generate("the", 5, temperature=0)
    for seed in range(5):  # the end of the line cannot come before min_tokens (default 1): never an empty sample
        assert lm.generate("the cat sat", 3, seed=seed).strip()
        assert lm.generate("the", 4, temperature=0, min_tokens=4) == lm.generate("the", 4, temperature=0, min_tokens=4,
                                                                                stop_at_eos=False)
    with pytest.raises(seq2text.ConfigError):
        lm.generate("the", -1)
    with pytest.raises(TypeError):
        lm.perplexity("a string, not a list")


def test_a_language_model_ensemble_is_the_mixture_of_its_members(toy_bundle: Path, toy_lm_dir: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """Scores, perplexity and sampling of the mean of the members' next-token probabilities; members must share
    the tokenizer and the direction."""
    first, second = seq2text.LanguageModel.load(toy_bundle), seq2text.LanguageModel.load(toy_bundle)
    perturbed(second)  # a second member that predicts otherwise
    ensemble = seq2text.LanguageModelEnsemble([first, second])
    text = "the cat sat on the mat"
    seq = torch.tensor([[EOS_ID, *first.reading.ids(first.tokenizer, text), EOS_ID]])  # (1, T + 1)
    probs = torch.stack([m.net.log_probs(m.net(seq[:, :-1])[0]).exp() for m in (first, second)]).mean(0)  # (1, T, V)
    assert ensemble.score([text])[0] == pytest.approx(float(probs.gather(-1, seq[:, 1:, None]).log().sum()), rel=1e-5)
    context = torch.tensor([[EOS_ID, *first.tokenizer.encode(["the"])[0]]])
    probs = torch.stack([m.net.log_probs(m.net(context)[0][:, -1]).exp() for m in (first, second)]).mean(0)  # (1, V)
    probs[0, EOS_ID] = probs[0, UNK_ID] = 0  # min_tokens, and <unk> is never sampled
    assert ensemble.generate("the", 1, temperature=0) == first.tokenizer.decode([[int(probs.argmax())]])[0]
    lines = (toy_lm_dir / "ptb.test.txt").read_text().splitlines()
    ppl = [member.perplexity(lines) for member in (first, second)]
    assert ensemble.perplexity(lines) < math.sqrt(ppl[0] * ppl[1])  # a mixture is no worse than its members' mean
    same = seq2text.load([toy_bundle, toy_bundle])
    assert isinstance(same, seq2text.LanguageModelEnsemble)
    assert same.evaluate(lines) == pytest.approx(first.evaluate(lines))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(toy_bundle), str(toy_bundle), "--input", str(toy_lm_dir / "ptb.test.txt")]
                ) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] == pytest.approx(ppl[0])
    assert main(["generate", "--model", str(toy_bundle), str(toy_bundle), "--prompt", "the", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip() == ("the " + first.generate("the", temperature=0)).strip()
    other = seq2text.load(REPO / "tests" / "fixtures" / "old_layout" / "classifier")
    with pytest.raises(seq2text.BundleError, match="member 1 was trained with another tokenizer"):
        seq2text.LanguageModelEnsemble([first, seq2text.LanguageModel(first.net, other.tokenizer)])
    with pytest.raises(seq2text.BundleError, match="member 1 reads text in the other direction"):
        seq2text.LanguageModelEnsemble([first, seq2text.LanguageModel(first.net, first.tokenizer,
                                                                      replace(first.reading, backward=True))])


def test_a_trained_lm_scores_a_sentence_above_its_shuffle(tmp_path: Path) -> None:
    """Text whose words follow one order (w3 w4 w5 ...): what the LM learned is the order, so every sentence
    must score above its own shuffle."""
    rng = random.Random(0)
    cycle = [f"w{i}" for i in range(20)]

    def line() -> str:
        start = rng.randrange(20)
        return " ".join(cycle[(start + j) % 20] for j in range(rng.randint(6, 12)))

    for split, n in (("train", 400), ("valid", 30), ("test", 30)):
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(line() for _ in range(n)) + "\n")
    lm = seq2text.load(fit("ptb_lstm_small.yaml", tmp_path / "out", "--data.init_args.root", str(tmp_path), *TINY_LM,
                           "--trainer.max_epochs", "4", "--model.init_args.optim.lr", "0.01",
                           "--model.init_args.regularization.dropout", "0",
                           "--model.init_args.regularization.dropout_input", "0", "--test_after_fit", "false"))
    real = [line() for _ in range(20)]
    shuffled = [" ".join(rng.sample(text.split(), len(text.split()))) for text in real]
    assert all(a > b for a, b in zip(lm.score(real), lm.score(shuffled), strict=True))


def test_backward_lm_reads_right_to_left(toy_bundle: Path, toy_lm_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    """ULMFiT's backward LM: the stream reversed in training, perplexity and scores; no generation."""
    tokenizer = seq2text.LanguageModel.load(toy_bundle).tokenizer
    lines = toy_lines(4, 0)
    backward = encode_stream(tokenizer, lines, backward=True)
    assert torch.equal(backward, encode_stream(tokenizer, lines).flip(0)) and backward[0] == EOS_ID
    bundle = fit("ptb_lstm_small.yaml", tmp_path / "bwd", "--data.init_args.root", str(toy_lm_dir), *TINY_LM,
                 "--trainer.max_epochs", "2", "--data.init_args.backward", "true")
    lm = seq2text.load(bundle)
    assert lm.backward and json.loads((bundle / "config.json").read_text())["data"]["backward"] is True
    test_lines = (toy_lm_dir / "ptb.test.txt").read_text().splitlines()
    assert lm.perplexity(test_lines) == pytest.approx(json.loads((bundle / "metrics.json").read_text())["test/ppl"],
                                                      rel=1e-4)
    as_forward = seq2text.LanguageModel(lm.net, lm.tokenizer)  # the same net reading reversed text forward
    assert lm.score(["the cat sat on"]) == pytest.approx(as_forward.score(["on sat cat the"]))
    with pytest.raises(seq2text.ConfigError, match="backward language model"):
        lm.generate("the cat")
    capsys.readouterr()
    code = run_fit("ptb_lstm_small.yaml", tmp_path / "refused", "--data.init_args.root", str(toy_lm_dir), *TINY_LM,
                   "--trainer.fast_dev_run", "true", "--model.init_args.pretrained_lm", str(bundle),
                   "--data.init_args.tokenizer_model", str(bundle / "tokenizer.model"))
    assert code == 1 and "is a backward language model but data.backward is false" in capsys.readouterr().err


def test_budget_stops_training_and_anneals(toy_lm_dir: Path, tmp_path: Path) -> None:
    bundle = fit("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(toy_lm_dir), *TINY_LM, "--budget", "3s",
                 "--trainer.max_epochs", "1000", "--model.init_args.optim.lr_schedule", "cosine",
                 "--test_after_fit", "false")
    metrics = json.loads((bundle / "metrics.json").read_text())
    # the budget, not max_epochs, stopped it (the exact bound is checked with a fake clock in
    # test_wallclock_budget_keeps_back_a_step_and_a_validation_pause: wall time bounds nothing on a loaded machine)
    assert metrics["train_seconds"] >= 1 and metrics["epochs"] < 1000
    assert parse_duration("1h30m") == 5400 and parse_duration("15m") == 900 and parse_duration(90) == 90
    with pytest.raises(seq2text.ConfigError):
        parse_duration("soon")


def _tiny_task(**kwargs: object) -> LanguageModelTask:
    return LanguageModelTask(vocab_size=30, emb_size=8, hidden_size=8, num_layers=2, **kwargs)


def test_cosine_schedule_reaches_the_floor_and_plateau_decays(toy_lm_dir: Path) -> None:
    dm = LMDataModule("ptb", root=str(toy_lm_dir), batch_size=4, bptt=8)
    task = LanguageModelTask(vocab_size=dm.vocab_size, emb_size=8, hidden_size=8, num_layers=1,
                             optim=Optimization("adam", 1.0, lr_schedule="cosine", min_lr_ratio=0.1))
    lrs: list[float] = []

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, idx):  # noqa: ANN001, ANN201
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = pl.Trainer(max_steps=40, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         callbacks=[Spy()], limit_val_batches=0, enable_model_summary=False)
    trainer.fit(task, dm)
    assert lrs[0] == pytest.approx(1.0, abs=0.01) and lrs[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    plateau = _tiny_task(optim=Optimization("sgd", 30.0, lr_schedule="plateau", plateau_factor=0.25))
    for loss in (5.0, 4.0, 4.5):
        plateau._after_validation(loss)
    assert plateau._lr_factor == 0.25


def test_nt_asgd_averages_and_evaluates_with_the_average() -> None:
    task = _tiny_task(regularization=Regularization(asgd=True, nonmono=2))
    for loss in (5.0, 4.0, 4.1, 4.2):  # not yet worse than the best of more than `nonmono` epochs ago
        task._after_validation(loss)
    assert task._average is None
    task._after_validation(4.3)
    assert task._average is not None
    before = {k: p.detach().clone() for k, p in task.net.named_parameters()}
    with torch.no_grad():
        for p in task.net.parameters():
            p.add_(1.0)
    task._update_average()
    task._swap_in_average()
    name, param = next(iter(task.net.named_parameters()))
    assert torch.allclose(param, before[name] + 0.5)  # mean of the old and the shifted weights
    task._swap_out_average()
    assert torch.allclose(param, before[name] + 1.0)
    assert torch.allclose(task.export_state()[name], before[name] + 0.5)


def test_wallclock_budget_progress() -> None:
    budget = WallClockBudget("10s")
    assert budget.progress() == 0.0
    budget.load_state_dict({"spent": 5.0})
    assert budget.progress() == pytest.approx(0.5)


def test_wallclock_budget_keeps_back_a_step_and_a_validation_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run stops early enough for one more step and the validation pause (the pass, then checkpointing)
    after the stop to fit."""
    clock = [100.0]
    monkeypatch.setattr("seq2text.tasks.callbacks.time.monotonic", lambda: clock[0])
    trainer = SimpleNamespace(should_stop=False, sanity_checking=False)
    budget = WallClockBudget("12s")
    budget.on_fit_start(trainer, None)

    def step() -> None:
        budget.on_train_batch_start(trainer, None)
        clock[0] += 1.0  # steps of 1 s
        budget.on_train_batch_end(trainer, None)

    step()
    clock[0] += 0.5  # epoch-end work before validation
    budget.on_validation_start(trainer, None)
    clock[0] += 2.0  # the pass
    clock[0] += 0.5  # a checkpoint after it
    while not trainer.should_stop:
        step()
    assert budget.reserve() == pytest.approx(4.0)  # a 1 s step + the 3 s pause
    assert budget.elapsed() == pytest.approx(8.0)  # 8 s + a 1 s step + a 3 s pause = the 12 s budget
    budget.on_validation_start(trainer, None)
    clock[0] += 3.0
    budget.on_fit_end(trainer, None)
    clock[0] += 50.0  # testing after the fit is not training time
    assert budget.elapsed() == pytest.approx(11.0) and budget.state_dict()["pause"] == pytest.approx(3.0)


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")
                                          if p.name.startswith(("ptb", "wikitext"))))
def test_every_lm_recipe_instantiates(recipe: str, toy_lm_dir: Path, tmp_path: Path) -> None:
    """Each recipe builds its trainer, data module and network (the one fit per task is tested above)."""
    from seq2text.cli import _lightning_cli_class

    with torch.device("meta"):  # the network's full size, without allocating or initialising its weights
        cli = _lightning_cli_class()(model_class=None, datamodule_class=None, subclass_mode_model=True,
                                     subclass_mode_data=True, run=False, auto_configure_optimizers=False,
                                     args=["--config", str(REPO / "recipes" / recipe), "--data.init_args.root",
                                           str(toy_lm_dir), "--trainer.default_root_dir", str(tmp_path),
                                           "--model.init_args.adaptive_cutoffs", "[]"])  # the toy vocabulary is tiny
    config = yaml.safe_load((REPO / "recipes" / recipe).read_text())["model"]["init_args"]
    assert isinstance(cli.model, LanguageModelTask)
    for key in ("emb_size", "hidden_size", "num_layers", "rnn_type"):
        assert getattr(cli.model.net.config, key) == config.get(key, getattr(cli.model.net.config, key)), key


@pytest.mark.real_data
def test_real_ptb_training_loss_falls_and_bundle_matches(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ptb"
    fit("ptb_lstm_small.yaml", out, "--data.init_args.root", str(real_data / "ptb"), "--model.init_args.emb_size",
        "64", "--model.init_args.hidden_size", "64", "--trainer.max_steps", "120", "--trainer.limit_val_batches",
        "10", "--trainer.log_every_n_steps", "5", *QUIET)
    rows = [line.split(",") for line in next(out.rglob("metrics.csv")).read_text().splitlines()]
    col = rows[0].index("train/loss")
    losses = [float(r[col]) for r in rows[1:] if r[col]]
    assert losses[-1] < losses[0] - 1.0, losses
    metrics = json.loads((out / "bundle" / "metrics.json").read_text())
    assert metrics["test/words"] == 82_430
    lines = (real_data / "ptb" / "ptb.test.txt").read_text().splitlines()
    assert seq2text.load(out / "bundle").perplexity(lines) == pytest.approx(metrics["test/ppl"], rel=1e-4)


def test_target_domain_fine_tuning_starts_from_an_lm_bundle(toy_bundle: Path, toy_lm_dir: Path,
                                                            tmp_path: Path) -> None:
    """ULMFiT's second stage: an LM bundle fine-tuned on other text with its own tokenizer and sizes."""
    from safetensors.torch import load_file

    weights = load_file(str(toy_bundle / "model.safetensors"))
    vocab = weights["embedding.weight"].size(0)
    task = LanguageModelTask(vocab, hidden_size=999, pretrained_lm=str(toy_bundle))
    assert task.net.config.hidden_size == 24 and task.hparams.hidden_size == 24  # the bundle's sizes
    for name, tensor in task.net.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    with pytest.raises(seq2text.ConfigError, match="set data.tokenizer_model to"):
        LanguageModelTask(vocab + 1, pretrained_lm=str(toy_bundle))
    target = tmp_path / "target"
    target.mkdir()
    for split, n, seed in (("train", 100, 7), ("valid", 20, 8), ("test", 20, 9)):
        (target / f"ptb.{split}.txt").write_text("\n".join(toy_lines(n, seed)) + "\n")
    tuned = fit("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(target), *TINY_LM,
                "--trainer.max_epochs", "2", "--model.init_args.pretrained_lm", str(toy_bundle),
                "--data.init_args.tokenizer_model", str(toy_bundle / "tokenizer.model"),
                "--model.init_args.optim.lr_schedule", "slanted_triangular")
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert metrics["test/ppl"] < json.loads((toy_bundle / "metrics.json").read_text())["test/ppl"] * 1.5


def test_a_budget_caps_each_validation_pass_and_announces_the_test(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    monkeypatch.setattr("seq2text.tasks.callbacks.time.monotonic", lambda: clock[0])
    trainer = SimpleNamespace(sanity_checking=False, state=SimpleNamespace(fn="fit"), num_val_batches=[100],
                              num_test_batches=[400])
    budget = WallClockBudget("100s", val_share=0.1)  # a pass may take 10 s
    budget.on_validation_epoch_start(trainer, None)
    kept = []
    for _ in range(100):
        kept.append(budget.keep_validation_batch(trainer))
        clock[0] += 0.5  # 0.5 s per batch: 20 batches fit in 10 s
    assert kept == [True] * 20 + [False] * 80 and budget.validation_fraction(trainer) == pytest.approx(0.2)
    with caplog.at_level("INFO"):
        budget.on_validation_epoch_end(trainer, None)
        budget.on_test_start(trainer, None)
    assert "validation: 20 of 100 batches" in caplog.text
    assert "test: 400 batches, the whole test split; about 1000 s" in caplog.text  # 50 s / 20 batches × 400
    trainer.sanity_checking = True  # the sanity check and a plain `validate` are never cut
    budget.on_validation_epoch_start(trainer, None)
    clock[0] += 1000
    assert budget.keep_validation_batch(trainer) and budget.validation_fraction(trainer) == 1.0


def test_a_budgeted_fit_cuts_a_long_validation_and_scores_it_pro_rata(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for split, n, seed in (("train", 200, 0), ("valid", 20000, 1), ("test", 30, 2)):
        (root / f"ptb.{split}.txt").write_text("\n".join(toy_lines(n, seed)) + "\n")
    with caplog.at_level("INFO"):
        bundle = fit("ptb_lstm_small.yaml", tmp_path, "--data.init_args.root", str(root), *TINY_LM, "--budget",
                     "4s", "--trainer.max_epochs", "1000", "--trainer.num_sanity_val_steps", "0")
    assert "of --budget that a pass may take" in caplog.text and "test: " in caplog.text
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert 1 < metrics["val/ppl"] < 40  # 17 words: a pro-rata ppl stays sane
