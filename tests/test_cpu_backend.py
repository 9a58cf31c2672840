"""The CPU backend's pieces, without Ray: sampling mapping, platform, registration, the HF server.

The end-to-end run through ``python -m verl.trainer.main_ppo`` is in ``test_cpu_main_ppo.py``.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys

import pytest
import torch

from verl_focal.cpu import cpu_env
from verl_focal.cpu._verl_internals import dedupe_backend
from verl_focal.cpu.sampling import plan_generation
from verl_focal.cpu.tiny_model import BOXED, TinyModelSpec, build_tiny_model, tokenizer_dir

PLAN_DEFAULTS = dict(
    prompt_length=16,
    response_length=8,
    max_model_len=None,
    default_repetition_penalty=1.0,
    ignore_eos=False,
    eos_token_id=2,
    pad_token_id=0,
)


# -- sampling parameters ------------------------------------------------------------------------


def test_plan_maps_vllm_top_k_off_to_hf_zero_and_passes_every_knob():
    plan = plan_generation({"temperature": 0.7, "top_p": 0.9, "top_k": -1, "logprobs": True}, 5, **PLAN_DEFAULTS)
    assert plan.kwargs["top_k"] == 0
    assert plan.kwargs["do_sample"] is True
    assert plan.kwargs["temperature"] == 0.7 and plan.kwargs["top_p"] == 0.9
    assert plan.kwargs["repetition_penalty"] == 1.0
    assert plan.kwargs["max_new_tokens"] == 8
    assert plan.kwargs["eos_token_id"] == 2 and plan.kwargs["pad_token_id"] == 0
    assert plan.want_log_probs and plan.unknown_keys == ()


def test_plan_temperature_zero_is_greedy():
    plan = plan_generation({"temperature": 0.0, "top_k": 5}, 5, **PLAN_DEFAULTS)
    assert plan.kwargs["do_sample"] is False
    assert plan.kwargs["top_k"] is None and plan.kwargs["temperature"] is None


def test_plan_clamps_max_tokens_to_the_context_and_to_one():
    assert plan_generation({"max_tokens": 100}, 20, **PLAN_DEFAULTS).kwargs["max_new_tokens"] == 4
    assert plan_generation({}, 22, **PLAN_DEFAULTS).kwargs["max_new_tokens"] == 2
    assert plan_generation({"max_tokens": 3}, 5, **PLAN_DEFAULTS).kwargs["max_new_tokens"] == 3


def test_plan_rejects_a_prompt_that_fills_the_context():
    with pytest.raises(ValueError, match="max_model_len=24"):
        plan_generation({}, 24, **PLAN_DEFAULTS)


def test_plan_ignore_eos_forces_full_length_and_reports_unknown_keys():
    plan = plan_generation({"frobnicate": 1, "seed": 3}, 5, **{**PLAN_DEFAULTS, "ignore_eos": True})
    assert plan.kwargs["eos_token_id"] is None and plan.kwargs["min_new_tokens"] == 8
    assert plan.unknown_keys == ("frobnicate",) and plan.seed == 3


def test_dedupe_backend_keeps_one_backend_per_device():
    assert dedupe_backend("cpu:gloo,cpu:gloo") == "cpu:gloo"
    assert dedupe_backend("cpu:gloo,cuda:nccl") == "cpu:gloo,cuda:nccl"
    assert dedupe_backend("gloo") == "gloo" and dedupe_backend(None) is None


# -- platform and registration ------------------------------------------------------------------


def test_cpu_platform_is_concrete_and_serves_verls_device_calls():
    from verl_focal.cpu.platform import PlatformCPU

    platform = PlatformCPU()
    assert (platform.device_name, platform.communication_backend_name(), platform.ray_resource_name()) == (
        "cpu",
        "gloo",
        "GPU",
    )
    assert torch.zeros(1).to(device=platform.current_device()).device.type == "cpu"
    assert not platform.is_platform_available(use_smi_check=True), "must never be auto-detected on a GPU host"
    dev = platform.device_module
    # every get_torch_device().<name> verl 0.9.1 calls (grep of the installed package)
    for name in ("empty_cache", "synchronize", "is_available", "current_stream", "set_device", "mem_get_info",
                 "stream", "Stream", "set_rng_state", "get_rng_state", "set_per_process_memory_fraction",
                 "ipc_collect", "device_count", "memory_reserved", "memory_allocated", "max_memory_reserved",
                 "max_memory_allocated", "get_device_name", "Event"):
        assert hasattr(dev, name), name
    free, total = dev.mem_get_info()
    assert 0 < free <= total
    dev.set_rng_state(dev.get_rng_state())
    with pytest.raises(AttributeError, match="CPUDeviceModule"):
        dev.graph_pool_handle()


def test_version_guard_names_the_installed_verl(monkeypatch):
    import verl

    from verl_focal.cpu import _verl_internals

    assert _verl_internals.check_verl_version() == verl.__version__
    monkeypatch.setattr(verl, "__version__", "0.10.0")
    with pytest.raises(_verl_internals.UnsupportedVerlVersion, match="verl 0.10.0 is installed"):
        _verl_internals.check_verl_version()


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)


REGISTRATION_PROBE = """
import verl
from verl.plugin.platform import get_platform
from verl.workers.rollout.base import _ROLLOUT_REGISTRY
from verl.workers.rollout.replica import RolloutReplicaRegistry
print(type(get_platform()).__name__ if "{platform}" else "-", ("hf_cpu", "async") in _ROLLOUT_REGISTRY,
      "hf_cpu" in RolloutReplicaRegistry._registry)
"""


def test_enable_module_registers_platform_and_rollout_in_a_fresh_process():
    result = _python(
        REGISTRATION_PROBE.format(platform="1")
        + "from verl.workers.rollout.base import get_rollout_class\n"
        + "from verl.workers.rollout.replica import get_rollout_replica_class\n"
        + "print(get_rollout_class('hf_cpu').__name__, get_rollout_replica_class('hf_cpu').__name__)\n",
        cpu_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["PlatformCPU", "True", "True", "HFServerAdapter", "HFCPUReplica"]


def test_default_plugin_does_not_load_the_cpu_backend():
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES")}
    probe = REGISTRATION_PROBE.format(platform="") + "import sys; print('verl_focal.cpu.enable' in sys.modules)"
    result = _python(probe, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["-", "False", "False", "False"]


def test_enable_without_cpu_platform_fails_loudly():
    env = cpu_env()
    env["VERL_PLATFORM"] = "nvidia"
    result = _python("import verl", env)
    assert result.returncode != 0
    assert "runs only with VERL_PLATFORM=cpu" in result.stderr


# -- the HF generate server, called the way verl calls it ---------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"), TinyModelSpec(seed=0))


def _server(model_dir: str, **rollout):
    from omegaconf import OmegaConf
    from verl.workers.config import RolloutConfig

    from verl_focal.cpu.hf_server import HFGenerateServer

    config = RolloutConfig(name="hf_cpu", prompt_length=64, response_length=6, dtype="float32",
                           tensor_model_parallel_size=1, **rollout)
    model_config = OmegaConf.create({"path": model_dir, "tokenizer_path": tokenizer_dir(model_dir)})
    return HFGenerateServer(config=config, model_config=model_config, replica_rank=0)


def _prompt(server) -> list[int]:
    tokenizer = server.model_config.tokenizer
    return list(tokenizer.encode("<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"))


def _generate(server, prompt, sampling_params):
    # keyword shape of verl's LLMServerClient.generate -> server.generate.remote(...) (llm_server.py)
    return asyncio.run(
        server.generate(request_id="r0", prompt_ids=prompt, sampling_params=sampling_params,
                        image_data=None, video_data=None)
    )


def test_server_log_probs_match_a_teacher_forced_forward_pass(tiny_dir):
    server = _server(tiny_dir)
    prompt = _prompt(server)
    torch.manual_seed(0)
    out = _generate(server, prompt, {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True})
    assert 1 <= len(out.token_ids) <= 6 and all(isinstance(t, int) for t in out.token_ids)
    assert out.stop_reason == "completed" and out.extra_fields == {"global_steps": None}
    assert len(out.log_probs) == len(out.token_ids)
    with torch.no_grad():
        logits = server.model(torch.tensor([prompt + out.token_ids])).logits[0].float()
    expected = torch.log_softmax(logits, -1)[len(prompt) - 1 : -1].gather(-1, torch.tensor(out.token_ids)[:, None])
    torch.testing.assert_close(torch.tensor(out.log_probs), expected[:, 0], rtol=1e-4, atol=1e-4)


def test_server_greedy_matches_hf_greedy_and_omits_log_probs_when_not_asked(tiny_dir):
    server = _server(tiny_dir)
    prompt = _prompt(server)
    out = _generate(server, prompt, {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "logprobs": False})
    reference = server.model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=6,
                                      eos_token_id=server.eos_token_id, pad_token_id=server.pad_token_id)
    assert out.token_ids == reference[0, len(prompt):].tolist()
    assert out.log_probs is None


def test_server_rejects_media(tiny_dir):
    server = _server(tiny_dir)
    with pytest.raises(ValueError, match="text only"):
        asyncio.run(server.generate(prompt_ids=[1, 2], sampling_params={}, request_id="img", image_data=["x"]))


def test_weight_buckets_replace_every_served_weight(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    server = _server(tiny_dir)
    other = AutoModelForCausalLM.from_pretrained(build_tiny_model(str(tmp_path / "other"), TinyModelSpec(seed=1)))
    # what the FSDP engine sends: HF names, tied lm_head.weight included
    named = list(other.state_dict().items())
    assert "lm_head.weight" in dict(named)
    half = len(named) // 2
    asyncio.run(server.update_weights_bucket(named[:half], is_last=False))
    result = asyncio.run(server.update_weights_bucket(named[half:], is_last=True, global_steps=3))
    assert result["received"] == len(named)
    expected = sum(p.detach().double().sum() for p in other.parameters())
    assert math.isclose(asyncio.run(server.parameter_checksum()), float(expected), rel_tol=1e-12)
    prompt = _prompt(server)
    out = _generate(server, prompt, {"temperature": 0.0, "logprobs": False})
    reference = other.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=6,
                               eos_token_id=server.eos_token_id, pad_token_id=server.pad_token_id)
    assert out.token_ids == reference[0, len(prompt):].tolist()
    assert out.extra_fields["global_steps"] == 3


def test_weight_sync_errors_name_the_weight(tiny_dir):
    server = _server(tiny_dir)
    named = dict(server.model.state_dict())
    with pytest.raises(KeyError, match="model.layers.0.mlp.up_proj.weight"):
        partial = [(k, v) for k, v in named.items() if k != "model.layers.0.mlp.up_proj.weight"]
        asyncio.run(server.update_weights_bucket(partial, is_last=True, global_steps=1))
    with pytest.raises(KeyError, match="model.decoy"):
        asyncio.run(server.update_weights_bucket([("model.decoy", torch.zeros(1))], is_last=False))
    with pytest.raises(ValueError, match="model.norm.weight"):
        asyncio.run(server.update_weights_bucket([("model.norm.weight", torch.zeros(3))], is_last=False))


def test_tiny_tokenizer_keeps_whitespace_and_boxed_answers_short(tiny_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(tiny_dir))
    assert len(tokenizer.encode("\n", add_special_tokens=False)) == 1
    ids = tokenizer.encode(f"{BOXED}12}}<|im_end|>", add_special_tokens=False)
    assert len(ids) == 5 and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "\\boxed{12}"


# -- the launcher's deadline: a stalled or failing rollout ends the run ---------------------------


def test_run_main_ppo_kills_a_stalled_run_at_its_deadline(tmp_path):
    from verl_focal.cpu.launch import run_main_ppo

    stall = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(120)"]
    result = run_main_ppo(stall, tmp_path / "stall.log", timeout_s=3)
    assert result.timed_out and not result.ok and result.seconds < 30
    assert "ran past its time limit" in result.explain()
    assert "started" in (tmp_path / "stall.log").read_text()


def test_run_main_ppo_stops_at_the_first_failed_rollout(tmp_path):
    from verl_focal.cpu.launch import run_main_ppo

    failing = [sys.executable, "-c",
               "import time; print('ERROR Error in _run_prompt for uid=u1', flush=True); time.sleep(120)"]
    result = run_main_ppo(failing, tmp_path / "fail.log", timeout_s=60)
    assert not result.ok and not result.timed_out and result.seconds < 30
    assert "uid=u1" in result.failure_line and "a rollout request failed" in result.explain()
