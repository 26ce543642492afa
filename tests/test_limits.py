"""Options mean what they say, and absurd costs are refused with the limit named, before anything is written."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dqnlab.experiments import limits
from dqnlab.config import check_given_once, resolve
from dqnlab.engine.envs import EnvSpec
from dqnlab.errors import DqnlabError
from dqnlab.experiments.spec import MAX_SEEDS, build_experiment
from tests.clitools import invoke, refused as one_line

CARTPOLE = EnvSpec("CartPole-v1", obs_dim=4, n_actions=2, registered_max_steps=500)
GB = 10**9


@pytest.fixture
def machine(monkeypatch):
    """An 8 GB machine with 1 GB free on every disk, so messages are the same everywhere."""
    monkeypatch.setattr(limits, "physical_memory", lambda: 8 * GB)
    monkeypatch.setattr(limits, "shutil", SimpleNamespace(disk_usage=lambda path: SimpleNamespace(free=GB)))


def refused(tmp_path, *args: str) -> str:
    """Run the command; assert it was refused on one line with exit 2 and wrote nothing; return the message."""
    out = tmp_path / "never"
    line = one_line(invoke(*args, "--out", out))
    assert not out.exists()
    return line.removeprefix("error: ")


# ---------------------------------------------------------------- the estimate


def test_cost_of_the_tutorial_run_by_hand():
    cost = limits.run_cost(resolve("tutorial"), CARTPOLE)
    assert cost.transitions == 50_000 and cost.transition_bytes == 4 * (4 + 4 + 1 + 1 + 1 + 1) == 48  # packed float32 rows
    # 4 -> 1024 -> 512 -> 2, each member's weight and bias blocks padded to 16 floats
    assert cost.file_parameters == 4 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 2 + 2 == 530_946
    assert cost.parameters == 4096 + 1024 + 524_288 + 512 + 1024 + 16 == 530_960
    # [obs; next_obs] through every layer (2 x 64 rows), gradients of all 128 rows ("full"), W0's transposed gradient
    assert cost.buffer_floats == 128 * (4 + 1024 + 512 + 2) + 128 * (1024 + 512 + 2) + 4 * 1024
    assert cost.memory == 50_000 * 48 + 530_960 * 4 * 4 + cost.buffer_floats * 4
    assert cost.checkpoints == 0 and cost.disk == 530_946 * 4  # weights.pt only


def test_checkpoints_and_saved_replay_count_on_disk():
    config = resolve("tutorial", overrides=["run.samples=1000", "run.checkpoint_every=300", "replay.capacity=500"])
    cost = limits.run_cost(config, CARTPOLE, save_replay=True)
    assert cost.checkpoints == 3 and cost.transitions == 500
    assert cost.disk == 4 * 530_946 * 4 + 500 * 46 and cost.replay == 500 * 48 + 500 * 46  # the ring, and its copy


def test_sizes_print_in_si_units_whatever_their_size():
    assert limits._size(999) == "999 bytes"
    assert limits._size(1000) == "1.0 kB"
    assert limits._size(46 * 10**12) == "46.0 TB"
    assert limits._size(46 * 10**400) == "4.60e+377 YB"  # beyond a float's range


def test_realistic_runs_are_not_refused(tmp_path):
    limits.check_cost(resolve("tutorial"), CARTPOLE, out=tmp_path / "run")  # 50,000 samples
    quick = build_experiment("quick", seeds=20)
    limits.check_experiment_cost(quick, "population", 2, None, tmp_path / "results")  # 20 seeds at once
    limits.check_experiment_cost(quick, "local", 2, None, tmp_path / "results")
    assert not (tmp_path / "run").exists() and not (tmp_path / "results").exists()


# ---------------------------------------------------------------- train


def test_a_replay_memory_beyond_the_machine_is_refused(tmp_path, machine):
    assert refused(tmp_path, "train", "--samples", "1000000000000") == (
        "the replay memory would need 48.0 TB (1,000,000,000,000 transitions x 48 bytes per transition), "
        "more than this machine's 8.0 GB of physical memory; lower run.samples or set replay.capacity"
    )
    message = refused(tmp_path, "train", "--samples", "1000000000000", "--set", "replay.capacity=500000000")
    assert message.startswith("the replay memory would need 24.0 GB (500,000,000 transitions") and message.endswith("; lower replay.capacity")
    message = refused(tmp_path, "train", "--samples", "1" + "0" * 40)  # far beyond any int64: still one line
    assert message.startswith("the replay memory would need 4.80e+17 YB (10,000,000,000")


def test_a_network_beyond_the_machine_is_refused(tmp_path, machine):
    assert refused(tmp_path, "train", "--set", "network.hidden=[100000, 100000]", "--set", "replay.batch_size=1",
                   "--set", "replay.warmup=1") == (
        "network.hidden [100000, 100000] would need 160.0 GB (10,000,800,016 parameters x 4 bytes x 4 copies: "
        "weights, gradients and Adam's two moments), more than this machine's 8.0 GB of physical memory; "
        "use narrower or fewer hidden layers"
    )  # fmt: skip
    assert "network.hidden [1000000000000]" in refused(tmp_path, "train", "--set", "network.hidden=[1000000000000]")
    assert refused(tmp_path, "train", "--preset", "standard", "--set", "network.hidden=[100000, 100000]").startswith(
        "network.hidden [100000, 100000] would need 200.0 GB (10,000,800,016 parameters x 4 bytes x 5 copies: "
        "weights, gradients, Adam's two moments and the target network)"
    )  # fmt: skip


def test_prioritized_replay_counts_its_sum_tree(tmp_path, machine):
    """500,000,000 slots: a tree of 533,333,377 float64 nodes (4.3 GB) beside the 48-byte rows (24.0 GB)."""
    message = refused(tmp_path, "train", "--samples", "500000000", "--set", "replay.prioritized=true")
    assert message.startswith("the replay memory would need 28.3 GB (500,000,000 transitions x 48 bytes per transition, "
                              "+ 4.3 GB of sum-tree for replay.prioritized)")  # fmt: skip


def test_a_batch_beyond_the_machine_is_refused(tmp_path, machine):
    message = refused(tmp_path, "train", "--set", "replay.batch_size=100000000", "--set", "replay.warmup=100000000")
    assert message.startswith("the learn step's buffers would need 2.5 TB (616,000,004,096 floats x 4 bytes for replay.batch_size 100,000,000")
    assert message.endswith("more than this machine's 8.0 GB of physical memory; lower replay.batch_size or network.hidden")


def test_parts_that_fit_alone_but_not_together_are_refused_as_a_whole(tmp_path, machine):
    # replay 4.8 GB and network 4.8 GB: each fits in 8 GB, together they do not
    message = refused(tmp_path, "train", "--samples", "100000000", "--set", "network.hidden=[17320, 17320]",
                      "--set", "replay.batch_size=1", "--set", "replay.warmup=1")  # fmt: skip
    assert message.startswith("this run would need ") and "of memory (replay 4.8 GB, network 4.8 GB" in message
    assert message.endswith("more than this machine's 8.0 GB of physical memory; make it smaller")


def test_checkpoints_beyond_the_free_disk_are_refused(tmp_path, machine):
    assert refused(tmp_path, "train", "--samples", "1000", "--checkpoint-every", "1") == (
        "run.checkpoint_every 1 with run.samples 1,000 would write 1,000 checkpoints and weights.pt, 1,001 files of "
        f"at least 2.1 MB each, 2.1 GB in all, more than the 1.0 GB free on the disk at {tmp_path}; "
        "raise run.checkpoint_every or choose an --out with more space"
    )  # fmt: skip


def test_a_small_run_still_trains(tmp_path, machine):
    out = tmp_path / "run"
    result = invoke("train", "-q", "--set", "network.hidden=[8]", "--samples", "100", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "result.json").is_file()


# ---------------------------------------------------------------- values out of range


@pytest.mark.parametrize(
    "override, message",
    [
        ("learner.lr=inf", "learner.lr must be finite; got inf"),
        ("replay.updates_per_step=inf", "replay.updates_per_step must be finite; got inf"),
        ("replay.updates_per_step=1e-7", "replay.updates_per_step must be >= 1e-6 (the training loop keeps it to the "
                                         "nearest millionth, so a smaller ratio never learns); got 1e-07"),
    ],
)  # fmt: skip
def test_values_the_engine_cannot_honour_are_refused(tmp_path, override, message):
    assert refused(tmp_path, "train", "--set", override) == message


def test_the_smallest_update_ratio_is_allowed():
    assert resolve(overrides=["replay.updates_per_step=1e-6"]).replay.updates_per_step == 1e-6


def test_one_key_given_two_different_values_is_refused():
    with pytest.raises(DqnlabError) as error:
        check_given_once(["run.samples=300", "learner.lr=1e-3", "run.samples=100"])
    assert str(error.value) == (
        "run.samples is given two different values, 300 and 100; give it once "
        "(--samples sets the same key as --set run.samples)"
    )
    check_given_once(["learner.lr=1e-3", "learner.lr=0.001", 'run.device="cpu"', "run.device=cpu"])  # the same value


# ---------------------------------------------------------------- compare


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "run.samples=300"], "--set run.samples does not apply to compare (the experiment sets it for every "
                                       "run); use --samples N (or samples = N in the experiment file)"),
        (["--set", "run.seed=5"], "--set run.seed does not apply to compare (the experiment sets it for every run); "
                                  "use --seeds N with --first-seed K (or seeds = [...] in the experiment file)"),
        (["--variant", "a:run.seed=3"], "compare: variant 'a' may not set run.seed (the experiment sets it for every "
                                        "run); use --seeds N with --first-seed K (or seeds = [...] in the experiment file)"),
        (["--variant", "a:run.samples=3"], "compare: variant 'a' may not set run.samples (the experiment sets it for "
                                           "every run); use --samples N (or samples = N in the experiment file)"),
        (["--device", "cpu", "--set", "run.device=cuda"], "run.device is given two different values, cuda and cpu; give "
                                                          "it once (--device sets the same key as --set run.device)"),
        (["--eval-every", "5", "--set", "run.eval_every=6"], "run.eval_every is given two different values, 6 and 5; give "
                                                             "it once (--eval-every sets the same key as --set run.eval_every)"),
        (["--seeds", "1000000000"], "compare: an experiment may have at most 10,000 seeds (each is one run of every "
                                    "variant); got 1,000,000,000"),
        (["--seeds", "3", "--first-seed", str(2**63 - 2)], "compare: seeds must be below 2**63 (run.seed's bound); "
                                                           "got seeds up to 9,223,372,036,854,775,808"),
    ],
)  # fmt: skip
def test_compare_refuses_options_it_cannot_honour(tmp_path, args, message):
    assert refused(tmp_path, "compare", *args) == message


@pytest.mark.parametrize(
    "text, message",
    [
        ("[common.run]\nsamples = 300\n", "common settings may not set run.samples (the experiment sets it for every run); "
                                          "use --samples N (or samples = N in the experiment file)"),
        ("[variants.a.run]\nseed = 3\n", "variant 'a' may not set run.seed (the experiment sets it for every run); "
                                         "use --seeds N with --first-seed K (or seeds = [...] in the experiment file)"),
        ("[common]\nagent = \"naive\"\n", "[common] may not hold agent = 'naive'; each variant names its agent, "
                                          "e.g. [variants.slow] agent = \"naive\""),
        ("[common]\nsamples = 300\n", "[common] may not hold samples = 300; write samples = ... at the top of the "
                                      "file, before any table"),
        ("[common]\nlr = 0.1\n", "[common] may hold only tables such as [common.learner]; got lr = 0.1"),
        ("common = 5\n", "common must be a table of tables such as [common.learner]; got 5"),
        ("[common.agent]\nname = \"naive\"\n", "common settings: unknown key 'agent'; allowed: env, network, learner, replay, run, behaviour"),
        ("[variants.a]\npreset = \"quick\"\n", "variant 'a': unknown key 'preset'; allowed: agent, env, network, learner, replay, run, behaviour"),
    ],
)  # fmt: skip
def test_experiment_files_that_say_what_compare_would_ignore_are_refused(tmp_path, text, message):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    assert refused(tmp_path, "compare", "--experiment", str(path)) == f"experiment file {path}: {message}"


def test_seeds_are_counted_before_they_are_built():
    with pytest.raises(DqnlabError, match=f"at most {MAX_SEEDS:,} seeds"):
        build_experiment(seeds=range(10**15))  # a tuple of these would not fit in any memory
    with pytest.raises(DqnlabError, match="at most 10,000 seeds"):
        build_experiment(seeds=list(range(MAX_SEEDS + 1)))
    assert build_experiment(seeds=range(2**63 - 2, 2**63)).seeds == (2**63 - 2, 2**63 - 1)
    with pytest.raises(DqnlabError, match="seeds must be below 2..63 .run.seed's bound.; got seeds up to 9,223,372,036,854,775,808$"):
        build_experiment(seeds=range(2**63 - 1, 2**63 + 1))


def test_compare_cost_counts_the_runs_held_at_once(tmp_path, machine):
    big = build_experiment("tutorial", samples=50_000_000, seeds=100)
    limits.check_experiment_cost(big, "local", 1, None, tmp_path)  # one 2.4 GB run at a time fits in 8 GB
    with pytest.raises(DqnlabError) as error:
        limits.check_experiment_cost(big, "population", 1, None, tmp_path)
    assert str(error.value) == (
        "the replay memory would need 240.0 GB (50,000,000 transitions x 48 bytes per transition x 100 seeds of "
        "variant 'replay' in populations side by side on 1 worker(s)), more than this machine's 8.0 GB of physical "
        "memory; lower run.samples or set replay.capacity, or use a --population-size"
    )  # fmt: skip
    limits.check_experiment_cost(big, "population", 1, 3, tmp_path)  # 3 seeds at a time: 7.2 GB
    with pytest.raises(DqnlabError, match=r"x 8 seeds of variant 'replay' in populations side by side on 2 worker\(s\)\), .*, or use fewer --workers or a smaller --population-size$"):
        limits.check_experiment_cost(big, "population", 2, 4, tmp_path)
    with pytest.raises(DqnlabError, match=r"x 4 runs of variant 'replay' at once, one per worker\), .*, or use fewer --workers$"):
        limits.check_experiment_cost(big, "local", 4, None, tmp_path)
    with pytest.raises(DqnlabError, match="on a local Ray instance of 4 CPUs"):
        limits.check_experiment_cost(big, "ray", 4, None, tmp_path)
    limits.check_experiment_cost(big, "ray", 4, None, tmp_path, address="auto")  # a cluster's memory is not known here
    checkpoints = build_experiment("tutorial", samples=1000, seeds=10, common={"run": {"checkpoint_every": 10}})
    with pytest.raises(DqnlabError, match=r"^the 20 runs still to do would write 2,020 weight files .* 4.3 GB in all, "
                                          r"more than the 1.0 GB free on the disk at "):  # fmt: skip
        limits.check_experiment_cost(checkpoints, "local", 1, None, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_a_cuda_run_is_measured_against_its_gpu(monkeypatch, machine):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(total_memory=80 * GB))
    config = resolve(overrides=["run.samples=1000000000", "run.device=cuda:1"])  # 46 GB: more than the host, less than the GPU
    limits.check_cost(config, CARTPOLE)
    with pytest.raises(DqnlabError, match=r"more than the 80.0 GB of memory of GPU cuda:1; lower run.samples"):
        limits.check_cost(resolve(overrides=["run.samples=2000000000", "run.device=cuda:1"]), CARTPOLE)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    limits.check_cost(config, CARTPOLE)  # no GPU: runtime.resolve_device refuses the run with its own line
