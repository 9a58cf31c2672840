"""The ``dapo`` policy loss, called the way verl's workers call it, on whichever verl is installed.

``dapo`` must equal verl's ``vanilla`` with the same clip bounds (values, gradients, metrics) under every
aggregation the installed verl has, refuse settings that are not clip-higher, and behave under
``verl.workers.utils.losses.ppo_loss``; verl's own ``cispo`` and ``vanilla`` are never replaced.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from tensordict import TensorDict
from verl.trainer.ppo import core_algos
from verl.utils import tensordict_utils as tu
from verl.workers.config import FSDPActorConfig, PolicyLossConfig
from verl.workers.utils.losses import ppo_loss

import verl_focal.plugin  # noqa: F401 - `import verl` loads it; imported for an explicit dependency
from verl_focal import losses


def _supported(mode):
    try:
        core_algos.agg_loss(torch.ones(1, 2), torch.ones(1, 2), mode)
    except ValueError:
        return False
    return True


# verl 0.9 added token-sum; each verl is tested on the modes it has.
AGG_MODES = [
    mode
    for mode in ["token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
    if _supported(mode)
]


def actor_config(loss_mode="dapo", low=0.2, high=0.28, clip_c=3.0, agg="token-mean", global_info=None, **extra):
    config = FSDPActorConfig(
        strategy="fsdp2",
        ppo_micro_batch_size_per_gpu=2,
        rollout_n=4,
        clip_ratio_low=low,
        clip_ratio_high=high,
        clip_ratio_c=clip_c,
        loss_agg_mode=agg,
        policy_loss=PolicyLossConfig(loss_mode=loss_mode),
        use_torch_compile=False,
        **extra,
    )
    config.global_batch_info.update(global_info or {})
    return config


def random_inputs(bs=6, length=9, seed=0, log_ratio_std=0.8, with_weights=False):
    """Ratios spread far enough to hit both clip bounds and the dual clip; ragged response masks."""
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(bs, length, generator=gen) * 3 - 0.05
    log_prob = (old + torch.randn(bs, length, generator=gen) * log_ratio_std).clamp(max=-1e-3)
    advantages = torch.randn(bs, 1, generator=gen).expand(bs, length).clone()
    lengths = torch.randint(1, length + 1, (bs,), generator=gen)
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    weights = torch.rand(bs, length, generator=gen) * 2 if with_weights else None
    return old, log_prob, advantages, mask, weights


def call(name, config, old, log_prob, advantages, mask, weights, agg=None):
    log_prob = log_prob.clone().requires_grad_(True)
    loss, metrics = core_algos.get_policy_loss_fn(name)(
        old_log_prob=old,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=mask,
        loss_agg_mode=agg or config.loss_agg_mode,
        config=config,
        rollout_is_weights=weights,
    )
    loss.backward()
    return loss.detach(), log_prob.grad, metrics


# --------------------------------------------------------------------------------------------------
# dapo == vanilla with the same bounds
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("agg", AGG_MODES)
@pytest.mark.parametrize(
    "low,high,clip_c,with_weights,global_info",
    [
        (0.2, 0.28, 3.0, False, None),  # the paper's DAPO
        (0.2, 0.2, 3.0, True, None),  # symmetric: PPO/GRPO
        (0.1, 0.5, 1.5, True, {"dp_size": 2, "batch_num_tokens": 40, "global_batch_size": 11}),
        (0.0, 10.0, 10.0, False, {"dp_size": 1, "batch_num_tokens": 25, "global_batch_size": 6}),
    ],
)
def test_dapo_equals_vanilla(agg, low, high, clip_c, with_weights, global_info):
    inputs = random_inputs(seed=int(high * 100) + len(agg), with_weights=with_weights)
    config = actor_config(low=low, high=high, clip_c=clip_c, agg=agg, global_info=global_info)
    loss_d, grad_d, metrics_d = call("dapo", config, *inputs)
    loss_v, grad_v, metrics_v = call("vanilla", config, *inputs)
    torch.testing.assert_close(loss_d, loss_v, rtol=0, atol=0)
    torch.testing.assert_close(grad_d, grad_v, rtol=0, atol=0)
    assert metrics_d == metrics_v
    assert grad_d.abs().sum() > 0


def test_inputs_exercise_every_branch():
    # Guards the equality test above against inputs where clipping never happens.
    old, log_prob, adv, mask, _ = random_inputs(seed=28)
    ratio = torch.exp(log_prob - old)[mask]
    a = adv[mask]
    assert ((ratio > 1.28) & (a > 0)).any() and ((ratio < 0.8) & (a < 0)).any() and ((ratio > 3) & (a < 0)).any()


def test_dapo_hand_computed_tokens():
    # eps_low 0.2, eps_high 0.28, c 3: one token per branch of the objective.
    ratio = torch.tensor([[1.5, 0.5, 0.5, 1.1, 5.0, 0.9]])
    adv = torch.tensor([[1.0, 1.0, -1.0, 2.0, -1.0, -2.0]])
    #      clipped above, unclipped, clipped below, inside, dual-clipped, inside
    expected = [-1.28, -0.5, 0.8, -2.2, 3.0, 1.8]
    config = actor_config()
    mask = torch.ones_like(ratio, dtype=torch.bool)
    loss, grad, metrics = call("dapo", config, torch.zeros_like(ratio), ratio.log(), adv, mask, None)
    assert loss.item() == pytest.approx(sum(expected) / 6)
    # d loss / d log pi = -A r on the active unclipped branch, 0 where a clip holds.
    torch.testing.assert_close(grad, torch.tensor([[0.0, -0.5, 0.0, -2.2, 0.0, 1.8]]) / 6)
    assert metrics["actor/pg_clipfrac"] == pytest.approx(2 / 6)
    assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(1 / 6)


def test_dapo_applies_rollout_correction_weights():
    old, log_prob, adv, mask, _ = random_inputs(seed=3)
    config = actor_config(agg="token-mean")
    base, _, _ = call("dapo", config, old, log_prob, adv, mask, None)
    doubled, _, _ = call("dapo", config, old, log_prob, adv, mask, torch.full_like(old, 2.0))
    torch.testing.assert_close(doubled, 2 * base)


@pytest.mark.parametrize(
    "low,high,clip_c,message",
    [
        (0.28, 0.2, 3.0, r"clip_ratio_high=0\.2 is below actor_rollout_ref\.actor\.clip_ratio_low=0\.28"),
        (-0.1, 0.28, 3.0, r"actor_rollout_ref\.actor\.clip_ratio_low must be >= 0"),
        (0.2, -0.3, 3.0, r"actor_rollout_ref\.actor\.clip_ratio_high must be >= 0"),
        (0.2, float("nan"), 3.0, r"actor_rollout_ref\.actor\.clip_ratio_high must be a finite number"),
        (0.2, 0.28, 1.0, r"actor_rollout_ref\.actor\.clip_ratio_c \(dual-clip\) must be > 1"),
    ],
)
def test_dapo_refuses_bad_clip_settings_naming_the_key(low, high, clip_c, message):
    old, log_prob, adv, mask, _ = random_inputs()
    with pytest.raises(ValueError, match=message):
        call("dapo", actor_config(low=low, high=high, clip_c=clip_c), old, log_prob, adv, mask, None)


def test_dapo_without_config_says_so():
    old, log_prob, adv, mask, _ = random_inputs()
    with pytest.raises(ValueError, match="needs the actor config"):
        losses.compute_policy_loss_dapo(old, log_prob, adv, mask, config=None)


# --------------------------------------------------------------------------------------------------
# Registration: dapo is ours, verl's own losses stay, a taken name is never overwritten
# --------------------------------------------------------------------------------------------------


def test_verl_cispo_and_vanilla_are_kept_and_dapo_is_ours():
    registry = core_algos.POLICY_LOSS_REGISTRY
    assert registry["cispo"] is core_algos.compute_policy_loss_cispo  # every supported verl has one
    assert registry["vanilla"] is core_algos.compute_policy_loss_vanilla
    assert core_algos.get_policy_loss_fn("dapo") is losses.compute_policy_loss_dapo
    assert verl_focal.plugin.EXPECTED_LOSSES == ("dapo",)
    assert verl_focal.plugin.LOAD_REPORT["registered"]["policy_loss"] == ["dapo"]


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_taken_dapo_is_never_overwritten_and_a_run_selecting_it_stops():
    # Another package took `dapo` before our plugin loaded (as a VERL_USE_EXTERNAL_MODULES module would).
    proc = run_python(
        """
        import json, os
        os.environ["VERL_USE_EXTERNAL_PLUGINS"] = "none"
        os.environ.pop("VERL_USE_EXTERNAL_MODULES", None)
        import verl
        from omegaconf import OmegaConf
        from verl.trainer.ppo import core_algos
        def someone_elses_dapo(**kwargs):
            raise AssertionError("not ours")
        core_algos.POLICY_LOSS_REGISTRY["dapo"] = someone_elses_dapo
        import verl_focal.plugin as plugin
        from verl_focal import registry
        config = OmegaConf.create({"algorithm": {"adv_estimator": "focal_grpo"},
                                   "actor_rollout_ref": {"actor": {"policy_loss": {"loss_mode": "dapo"}}}})
        try:
            registry.check_run(config)
            stopped = None
        except RuntimeError as exc:
            stopped = str(exc)
        print(json.dumps({"report": plugin.LOAD_REPORT, "dapo": core_algos.POLICY_LOSS_REGISTRY["dapo"].__name__,
                          "stopped": stopped}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["dapo"] == "someone_elses_dapo"  # never overwritten
    assert found["report"]["registered"]["policy_loss"] == []
    reason = "name already registered by another package; not overwritten"
    assert found["report"]["skipped"] == [["policy_loss", "dapo", reason]]
    assert "verl-focal: policy loss 'dapo' not registered" in proc.stderr
    assert found["stopped"].startswith("actor_rollout_ref.actor.policy_loss.loss_mode=dapo is registered by ")
    assert "__main__.someone_elses_dapo" in found["stopped"]


# --------------------------------------------------------------------------------------------------
# Through verl's ppo_loss, as the actor worker calls it
# --------------------------------------------------------------------------------------------------


def worker_batch(old, log_prob, adv, mask, prompt_lens, global_tokens, global_seqs, dp_size=1):
    """The TensorDict ppo_loss receives: padded prompts/responses and a flat (no-padding) log_probs."""
    bs, resp_len = old.shape
    max_prompt = int(max(prompt_lens))
    response_lens = mask.sum(-1)
    attention = torch.zeros(bs, max_prompt + resp_len, dtype=torch.int64)
    flat = []
    for i in range(bs):
        p, r = int(prompt_lens[i]), int(response_lens[i])
        attention[i, max_prompt - p : max_prompt] = 1
        attention[i, max_prompt : max_prompt + r] = 1
        # The model output is shifted by one: position t predicts token t + 1, so the response
        # log-probs sit at positions p - 1 .. p + r - 2 of the p + r sequence.
        seq = torch.full((p + r,), float("nan"))
        seq[p - 1 : p + r - 1] = log_prob[i, :r]
        flat.append(seq)
    data = tu.get_tensordict(
        {
            "prompts": torch.zeros(bs, max_prompt, dtype=torch.int64),
            "responses": torch.zeros(bs, resp_len, dtype=torch.int64),
            "attention_mask": attention,
            "response_mask": mask.to(torch.int64),
            "old_log_probs": old,
            "advantages": adv,
        },
        non_tensor_dict={"dp_size": dp_size, "batch_num_tokens": global_tokens, "global_batch_size": global_seqs},
    )
    return data, torch.cat(flat).requires_grad_(True)


def test_ppo_loss_with_dapo_matches_the_closed_form_and_is_micro_batch_invariant():
    old, log_prob, adv, mask, _ = random_inputs(bs=8, length=7, seed=11)
    prompt_lens = torch.tensor([3, 1, 4, 2, 5, 2, 3, 1])
    tokens, seqs = int(mask.sum()), old.shape[0]
    config = actor_config()

    data, flat = worker_batch(old, log_prob, adv, mask, prompt_lens, tokens, seqs)
    assert isinstance(data, TensorDict)
    full_loss, metrics = ppo_loss(config, {"log_probs": flat}, data)
    full_loss.backward()

    # Closed form, independent of both implementations: the global token mean of the clipped objective.
    ratio = torch.exp(log_prob - old)
    per_token = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.28))
    per_token = torch.where(adv < 0, torch.minimum(per_token, -3.0 * adv), per_token)
    assert full_loss.item() == pytest.approx((per_token * mask).sum().item() / tokens, rel=1e-6)
    assert metrics["actor/pg_loss"].aggregate() == pytest.approx(full_loss.item(), rel=1e-6)
    assert 0 < metrics["actor/pg_clipfrac"].aggregate() < 1
    assert torch.isfinite(flat.grad).all()

    # Two micro-batches with the same global token count add up to the full-batch loss and gradient.
    total, grads = 0.0, []
    for rows in (slice(0, 3), slice(3, 8)):
        part, part_flat = worker_batch(
            old[rows], log_prob[rows], adv[rows], mask[rows], prompt_lens[rows], tokens, seqs
        )
        loss, _ = ppo_loss(config, {"log_probs": part_flat}, part)
        loss.backward()
        total += loss.item()
        grads.append(part_flat.grad)
    assert total == pytest.approx(full_loss.item(), rel=1e-6)
    torch.testing.assert_close(torch.cat(grads), flat.grad)


def test_ppo_loss_surfaces_the_dapo_refusal():
    old, log_prob, adv, mask, _ = random_inputs(bs=2, length=4)
    data, flat = worker_batch(old, log_prob, adv, mask, torch.tensor([2, 2]), int(mask.sum()), 2)
    with pytest.raises(ValueError, match="clip_ratio_high"):
        ppo_loss(actor_config(low=0.3, high=0.2), {"log_probs": flat}, data)
