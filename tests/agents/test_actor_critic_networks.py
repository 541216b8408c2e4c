"""The actor-critic and meta-network initialisations of agents/networks.py."""

import jax
import jax.numpy as jnp
import numpy as np

from agents.networks import actor_critic_mlp, sigmoid_meta_net


def test_torch_initialisation_is_uniform_within_one_over_sqrt_fan_in():
    nets = actor_critic_mlp(num_actions=4, hidden_sizes=(64, 64), init="torch")
    params = nets.init(jax.random.PRNGKey(0), jnp.zeros(30))
    for layer, fan_in in (("value/linear_0", 30), ("value/linear_1", 64), ("policy/linear_2", 64)):
        net = "value" if layer.startswith("value") else "policy"
        bound = 1 / np.sqrt(fan_in)
        for name, leaf in params[net][layer].items():
            assert np.abs(np.asarray(leaf)).max() <= bound
            if name == "w":  # many draws: they fill the interval (not a narrower law)
                assert np.abs(np.asarray(leaf)).max() > 0.95 * bound
    haiku = actor_critic_mlp(num_actions=4, hidden_sizes=(64, 64), init="haiku")
    hparams = haiku.init(jax.random.PRNGKey(0), jnp.zeros(30))
    np.testing.assert_array_equal(hparams["value"]["value/linear_0"]["b"], 0.0)
    meta = sigmoid_meta_net(hidden_size=8, initial_value=0.3)
    mparams = meta.init(jax.random.PRNGKey(1), jnp.zeros(10))
    np.testing.assert_allclose(meta.apply(mparams, jnp.ones(10)), 0.3, rtol=1e-6)
    assert np.abs(np.asarray(mparams["hidden"]["b"])).max() > 0  # active hidden units
