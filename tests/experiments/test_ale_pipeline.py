"""The real-ALE pipeline end to end on real ROMs: actors, the fed learner, meta-steps."""

import dataclasses

import jax
import numpy as np
import pytest

from experiments.atari import pipeline
from experiments.atari.config import AleConfig, make_config
from experiments.common.config_checks import ConfigError

# meta_eps far below the meta-gradients (the auxiliary heads' are ~1e-9 at the start), so
# that Adam is invariant to their scale and the reduction below is a test of the construction.
SMALL = AleConfig(
    game="ms_pacman", num_envs=2, rollout_length=4, torso="nature", seed=3, meta_eps=1e-16
)
STEPS = 3


@pytest.fixture(scope="module")
def stacx_rows():
    return pipeline.run(dataclasses.replace(SMALL, method="stacx"), STEPS)


def test_stacx_smoke_rows(stacx_rows):
    assert [r["meta_step"] for r in stacx_rows] == [1, 2, 3]
    # A first rollout, then K = 1 rollout per meta-step, of T x B agent steps of 4 frames.
    assert [r["frames"] for r in stacx_rows] == [(1 + s) * 4 * 2 * 4 for s in (1, 2, 3)]
    assert [r["lag"] for r in stacx_rows] == [0, 1, 1]
    assert all(np.isfinite(r["meta_loss"]) for r in stacx_rows)
    # The meta-updates move the learned hyperparameters (discount starts at 0.99).
    assert stacx_rows[-1]["discount"] != stacx_rows[0]["discount"]


@pytest.mark.slow
def test_the_same_seed_gives_the_same_run(stacx_rows):
    assert pipeline.run(dataclasses.replace(SMALL, method="stacx"), STEPS) == stacx_rows


def test_bmg_sgd_l2_l1_on_host_actors_is_the_stacx_run(stacx_rows):
    """BMG's meta-gradient is α times STACX's; Adam (eps ≪ the gradients) takes the same
    steps, so the runs coincide up to float32 rounding. (Clipping, on by default, would break
    the scale invariance: the meta-gradients here are far below its norm of 1.)"""
    config = dataclasses.replace(
        SMALL,
        method="bmg",
        target_optimizer="sgd",
        target_learning_rate=0.3,
        matching="l2",
        bootstrap_steps=1,
    )
    rows = pipeline.run(config, STEPS)
    assert config.meta_max_grad_norm == 1.0
    assert max(r["meta_grad_norm"] for r in [*rows, *stacx_rows]) < 1.0
    moved = np.abs(np.subtract(stacx_rows[-1]["policy_cost"], stacx_rows[0]["policy_cost"]))
    assert moved.max() > 5e-4  # two Adam steps of the meta-rate: far above the tolerance
    for got, expected in zip(rows, stacx_rows, strict=True):
        assert got["frames"] == expected["frames"] and got["lag"] == expected["lag"]
        assert got["episode_returns"] == expected["episode_returns"]
        for name in ("discount", "lambda_", "policy_cost", "value_cost", "entropy_cost"):
            np.testing.assert_allclose(got[name], expected[name], atol=2e-5, err_msg=name)


@pytest.mark.slow  # two runs of 60 BMG meta-steps at the quick preset's batch: ~1 min
def test_bmg_hyperparameters_keep_moving_after_the_early_meta_gradient_spike():
    """BMG RMSProp KL&V L = 1 on Ms. Pac-Man: meta-step 5's meta-gradient is thousands of
    times the median (the inner RMSProp's second moments are still near their zero start).
    Unclipped, it fills Adam's second moment and the entropy weight stays where it started;
    with the default clip it keeps moving at Adam's rate after the spike."""
    settings = dict(
        preset="quick",
        method="bmg",
        game="ms_pacman",
        target_optimizer="rmsprop",
        matching="kl_v",
        bootstrap_steps=1,
        seed=0,
    )
    moved = {}
    for clip in (0.0, 1.0):
        rows = pipeline.run(make_config(**settings, meta_max_grad_norm=clip), 60)
        norms = [r["meta_grad_norm"] for r in rows]
        assert max(norms) > 100 * np.median(norms), np.round(norms, 2)
        weights = np.array([r["entropy_cost"][0] for r in rows])
        moved[clip] = np.max(np.abs(weights[20:] - weights[20]))
    # Measured: 1.04e-4 clipped against 7e-6 unclipped over meta-steps 20-60.
    assert moved[1.0] > 5 * moved[0.0], moved


@pytest.mark.slow
def test_bmg_rmsprop_kl_v_with_the_impala_torso():
    config = dataclasses.replace(
        SMALL, method="bmg", torso="impala", bootstrap_steps=2, num_envs=2, rollout_length=3
    )
    rows = pipeline.run(config, 2)
    # K + L - 1 = 2 rollouts per meta-step.
    assert [r["frames"] for r in rows] == [(1 + 2 * s) * 3 * 2 * 4 for s in (1, 2)]
    assert all(np.isfinite(r["meta_loss"]) and r["meta_loss"] > 0 for r in rows)


def test_unknown_game_is_refused_before_anything_starts():
    with pytest.raises(ConfigError, match="game must be one of"):
        dataclasses.replace(SMALL, game="mspacman")


def _segment(pipe, state):
    """One meta-step's rollouts from actor 0's emulators (as the benchmark collects them)."""
    env, obs = pipe.envs[0]
    rollouts, returns, finished = [], pipeline.ale.EpisodeReturns(pipe.config.num_envs), []
    for _ in range(pipe.config.rollouts_per_update):
        obs, _, rollout = pipeline.actors.collect_rollout(
            env, obs, pipe.policies[0], state.learner.params, 0,
            pipe.config.rollout_length, returns, finished,
            reward_clip=pipe.config.reward_clip,
        )  # fmt: skip
        rollouts.append(rollout)
    return jax.tree.map(lambda *xs: np.stack(xs), *rollouts)


def test_learner_on_two_devices_splits_the_batch_and_gives_the_one_device_step():
    """``learner_devices=2`` (tests run with two CPU devices): the same meta-step, its
    parameters on both devices, the meta-loss and the new parameters equal up to the order
    of the cross-device sum."""
    config = dataclasses.replace(SMALL, method="bmg", bootstrap_steps=2, num_envs=4)
    outs = {}
    for devices in (1, 2):
        pipe = pipeline.Pipeline(dataclasses.replace(config, learner_devices=devices))
        try:
            pipe.open()
            state = pipe.fresh()
            segment = _segment(pipe, state)
            new, stats, _, finite = pipe.learn(state, segment)
            assert bool(finite)
            outs[devices] = (new, float(stats["meta_loss"]))
        finally:
            pipe.close()
    (one, loss1), (two, loss2) = outs[1], outs[2]
    leaf = jax.tree.leaves(two.learner.params)[0]
    assert len(leaf.sharding.device_set) == 2
    np.testing.assert_allclose(loss2, loss1, rtol=1e-5)
    leaves = zip(*(jax.tree.leaves(x.learner.params) for x in (one, two)), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)


def test_learner_devices_must_divide_the_batch_and_exist():
    with pytest.raises(ConfigError, match="multiple of learner_devices"):
        dataclasses.replace(SMALL, num_envs=3, learner_devices=2)
    with pytest.raises(ConfigError, match="this process has 2 local device"):
        pipeline.Pipeline(dataclasses.replace(SMALL, num_envs=4, learner_devices=4))


def test_the_policy_keeps_its_entropy_on_ms_pacman_with_clipped_rewards():
    """A learning check at the quick preset's batch: over STACX meta-steps 11-20 (frames
    6,400-12,800) the main head's policy entropy stays well above zero (it dips and recovers:
    0.11-1.4, mean 0.64, of ln 9 = 2.2). Learning from raw game rewards (Ms. Pac-Man's pellets
    are worth 10, its ghosts 200+) collapsed it for good (1e-35 here; a policy that scored 60
    in every game); the rollouts' rewards are clipped to [-1, 1] as in IMPALA."""
    config = make_config(preset="quick", method="stacx", game="ms_pacman", seed=0)
    rows = pipeline.run(config, 20)
    entropies = [row["entropy"] for row in rows]
    assert all(np.isfinite(entropies))
    assert np.mean(entropies[10:]) > 0.2, np.round(entropies, 2)


def test_learn_cost_counts_the_meta_steps_work():
    """The benchmark's bound rests on XLA's count of the meta-step's floating-point work:
    it must be the convolutions' (proportional to the batch) and grow with BMG's target."""
    flops = {}
    for name, overrides in (
        ("stacx", {"method": "stacx"}),
        ("stacx, twice the batch", {"method": "stacx", "num_envs": 4}),
        ("bmg L=1", {"method": "bmg", "bootstrap_steps": 1}),
    ):
        pipe = pipeline.Pipeline(dataclasses.replace(SMALL, **overrides))
        try:
            pipe.open()
            state = pipe.fresh()
            flops[name] = pipe.learn_cost(state, _segment(pipe, state))["flops"]
        finally:
            pipe.close()
    assert flops["stacx"] > 1e8  # ~1.4 GFLOP for 2 x 5 frames through the Nature torso
    assert 1.9 < flops["stacx, twice the batch"] / flops["stacx"] <= 2.0
    # The target's extra update and forward passes: ~1.4 times STACX's work.
    assert flops["bmg L=1"] > 1.2 * flops["stacx"]


def test_the_ale_clips_the_meta_gradient_by_default():
    """Every ALE preset clips at norm 1 (BMG's early spikes would freeze Adam otherwise);
    ``--meta_max_grad_norm=0`` turns it off."""
    for preset in ("smoke", "quick", "paper"):
        for method in ("stacx", "bmg"):
            assert make_config(preset=preset, method=method).meta_max_grad_norm == 1.0
    assert make_config(preset="quick", method="bmg", meta_max_grad_norm=0.0).meta_max_grad_norm == 0


@pytest.mark.parametrize("clip", [0.0, 1e-7])
def test_bmg_meta_steps_move_the_hyperparameters_as_adam_on_the_meta_loss_gradient(clip):
    """The pipeline's meta-step applies the meta-loss's own gradient, downhill: Adam's first
    step is -lr * sign(gradient) in every learned meta-parameter, its second the replay of
    optax's Adam on the two gradients (BMG RMSProp KL&V, L = 2), clipped to the global norm
    ``meta_max_grad_norm`` first when it is set (1e-7 is below these gradients' norms, ~1e-6, so
    the clipped replay differs from the plain one)."""
    import optax

    from agents import rollout_feed

    config = dataclasses.replace(
        SMALL,
        method="bmg",
        target_optimizer="rmsprop",
        matching="kl_v",
        bootstrap_steps=2,
        meta_max_grad_norm=clip,
    )
    pipe = pipeline.Pipeline(config)
    try:
        pipe.open()
        state = pipe.fresh()

        def meta_loss(meta_params, state, rollouts):
            learner_state = rollout_feed.feed(state.learner, rollouts)
            target_opt_state = state.meta_opt_state.target_opt_state
            return pipe.meta_opt.loss(meta_params, learner_state, target_opt_state)[0]

        grad = jax.jit(jax.grad(meta_loss))
        adam = optax.adam(config.meta_learning_rate, eps=config.meta_eps)
        replays = {"plain": adam, "clipped": optax.chain(optax.clip_by_global_norm(clip), adam)}
        replayed = {name: jax.tree.map(np.asarray, state.meta_params) for name in replays}
        replay_states = {name: opt.init(replayed[name]) for name, opt in replays.items()}
        for step in range(2):
            segment = _segment(pipe, state)
            g = grad(state.meta_params, state, jax.device_put(segment))
            before = state.meta_params
            state = pipe.learn(state, segment)[0]
            for name, opt in replays.items():
                updates, replay_states[name] = opt.update(g, replay_states[name], replayed[name])
                replayed[name] = optax.apply_updates(replayed[name], updates)
            if step == 0:
                for b, a, gr in zip(
                    *map(jax.tree.leaves, (before, state.meta_params, g)), strict=True
                ):
                    assert np.all(np.abs(gr) > 0)
                    np.testing.assert_allclose(
                        np.subtract(a, b), -config.meta_learning_rate * np.sign(gr), rtol=1e-3
                    )
        expected = replayed["clipped" if clip else "plain"]
        for a, r in zip(*map(jax.tree.leaves, (state.meta_params, expected)), strict=True):
            np.testing.assert_allclose(a, r, atol=1e-6)
        if clip:
            clipped, plain = (jax.tree.leaves(replayed[name]) for name in ("clipped", "plain"))
            gap = max(
                np.max(np.abs(np.subtract(c, p))) for c, p in zip(clipped, plain, strict=True)
            )
            assert gap > 1e-5
    finally:
        pipe.close()
