"""Every command-line tool under bad input: a non-zero exit, one message line naming the offending file, row, key
or flag, no traceback, and every input file byte-for-byte as it was (nothing written either).

The tools run in-process through ``verl_focal.cli.main``; three cases also run as real subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from verl_focal.cli import main as verl_focal
from verl_focal.user_files import UserFileError, check_output_file, decode_utf8, replacing

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _sys_is_writable() -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir="/sys"):
            return True
    except OSError:
        return False


# /sys refuses new files even to root, which os.access does not see; elsewhere the case is skipped
unwritable = pytest.mark.skipif(not Path("/sys").is_dir() or _sys_is_writable(), reason="needs a read-only /sys")


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = verl_focal(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (bytecode caches of a scorer module aside)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def assert_refused(code, out: str, err: str, expected_code: int, needle: str) -> None:
    assert code == expected_code, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    # argparse prints its usage (first line "usage: ...", wrapped lines indented) before the one message line
    message = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert len(message) == 1, err
    assert needle in message[0], message[0]


def check_case(capsys, world: Path, argv: list[str], code: int, needle: str) -> None:
    before = snapshot(world)
    argv = [a.format(w=world) for a in argv]
    assert_refused(*run(capsys, argv), code, needle.format(w=world))
    assert snapshot(world) == before  # inputs unchanged, no output written


# ----------------------------------------------------------------------------- eval


def dump_row(uid: str, acc, source: str = "math500", text: str = "q") -> dict:
    return {"input": text, "output": "a", "gts": "1", "score": float(acc), "step": 0, "acc": acc, "uid": uid,
            "data_source": source}


def write_dump(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(r if isinstance(r, bytes) else (json.dumps(r) + "\n").encode() for r in rows))
    return path


GOOD = [dump_row(f"p_{s}_0", s % 2 == 0) for s in range(4)]
SCORER = """\
def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    if not isinstance(solution_str, str):
        raise TypeError(f"solution_str is {type(solution_str).__name__}")
    if solution_str == "boom":
        raise ZeroDivisionError("the scorer broke")
    return {"score": float(solution_str == ""), "acc": solution_str == ""}
"""


@pytest.fixture(scope="module")
def eval_world(tmp_path_factory) -> Path:
    world = tmp_path_factory.mktemp("eval_world")
    write_dump(world / "val" / "0.jsonl", GOOD)
    write_dump(world / "lr=1e-6" / "0.jsonl", GOOD)
    write_dump(world / "conflict.jsonl", [GOOD[0], GOOD[1], dump_row("p_0_0", False)])
    write_dump(world / "badbytes.jsonl", [GOOD[0], b'{"input": "q\xff", "acc": true}\n'])
    write_dump(world / "bigsession.jsonl", [GOOD[0], dump_row("p_1048576_0", True)])
    (world / "afile").write_text("not a folder\n")
    (world / "scorer.py").write_text(SCORER)
    pd.DataFrame({
        "data_source": ["math500", "math500"],
        "prompt": [[{"role": "user", "content": f"q{i}"}] for i in range(2)],
        "reward_model": [{"style": "rule", "ground_truth": "1"}] * 2,
        "responses": [[None, "x"], ["boom", "x"]],
    }).to_parquet(world / "gen.parquet")
    return world


EVAL_CASES = [
    # output paths: refused before any input is read
    (["{w}/val", "--json", "{w}/val/0.jsonl"], 2, "--json {w}/val/0.jsonl: is the input of run '{w}/val'"),
    (["{w}/val/0.jsonl", "--csv", "{w}/val/0.jsonl"], 2, "is the input of run"),
    (["{w}/val", "--csv", "{w}/val/12.jsonl"], 2, "is a <step>.jsonl in the validation folder of run"),
    (["{w}/val/0.jsonl", "--json", "{w}/val/5.jsonl"], 2, "is a <step>.jsonl in the validation folder"),
    (["{w}/val", "--csv", "{w}/afile/x.csv"], 2, "--csv {w}/afile/x.csv: {w}/afile is a file, not a directory"),
    (["{w}/val", "--csv", "{w}/val"], 2, "--csv {w}/val: is a directory"),
    (["{w}/val", "--plot", "{w}/passk.xyz"], 2, "--plot {w}/passk.xyz: unknown format '.xyz'"),
    (["{w}/val", "--plot", "{w}/passk"], 2, "unknown format '(no suffix)'"),
    (["{w}/val", "--json", "{w}/r.json", "--csv", "{w}/r.json"], 2, "writes the same file"),
    pytest.param(["{w}/val", "--csv", "/sys/ladder.csv"], 2, "--csv /sys/ladder.csv: cannot write in /sys",
                 marks=unwritable),
    # numbers and options that would do nothing
    (["{w}/val", "--threshold", "nan"], 2, "argument --threshold: expected a finite number, got 'nan'"),
    (["{w}/val", "--threshold", "inf"], 2, "argument --threshold"),
    (["{w}/val", "--k", "0,1"], 2, "argument --k"),
    (["{w}/val", "--step", "-1"], 2, "argument --step"),
    (["{w}/val/0.jsonl", "--step", "3"], 2, "--step 3 picks the dump of a directory run"),
    (["{w}/val", "--alpha", "0.1"], 2, "--alpha sets the paired test"),
    (["{w}/val", "--reward", "x:y"], 2, "--reward scores generation parquets"),
    (["--compare", "{w}/val", "{w}/lr=1e-6", "--alpha", "1"], 2, "argument --alpha"),
    (["--compare", "{w}/val", "{w}/lr=1e-6", "--iterations", "0"], 2, "argument --iterations"),
    (["--compare", "{w}/val", "{w}/lr=1e-6", "--seed", "-1"], 2, "argument --seed"),
    (["{w}/val", "--n", "0"], 2, "argument --n: expected an integer >= 1, got '0'"),
    # input content
    (["{w}/conflict.jsonl"], 1, "{w}/conflict.jsonl: lines 1 and 3 both hold uid 'p_0_0' with a different 'acc'"),
    (["{w}/badbytes.jsonl"], 1, "{w}/badbytes.jsonl:2: not UTF-8 text (byte 0xff at column 13)"),
    (["{w}/bigsession.jsonl"], 1, "{w}/bigsession.jsonl:2: uid 'p_1048576_0' has session 1048576; verl numbers"),
    (["{w}/val", "--n", "3"], 1, "{w}/val/0.jsonl: prompt uid 'p' (math500) has 4 samples, more than --n 3"),
    (["{w}/gen.parquet", "--reward", "{w}/scorer.py:compute_score"], 1,
     "gen.parquet: row 1, response 0: --reward {w}/scorer.py:compute_score raised ZeroDivisionError"),
    (["{w}/gen.parquet", "--reward", "{w}/scorer.py:SCORER"], 1, "could not be loaded: AttributeError"),
    (["{w}/nope=lr=1e-6"], 1, "{w}/nope=lr=1e-6: no such file or directory"),
    (["lr=nope/"], 1, "lr=nope/: no such file or directory, nor is 'nope/'"),
]


@pytest.mark.parametrize("argv, code, needle", EVAL_CASES)
def test_eval_refuses_bad_input(eval_world, capsys, argv, code, needle):
    check_case(capsys, eval_world, ["eval", *argv], code, needle)


def test_eval_reads_existing_paths_with_equals_signs_and_none_responses(eval_world, tmp_path, capsys):
    before = snapshot(eval_world)
    code, out, err = run(capsys, ["eval", f"{eval_world}/lr=1e-6", "--json", str(tmp_path / "new" / "r.json")])
    assert code == 0, err
    report = json.loads((tmp_path / "new" / "r.json").read_text())  # the missing folder was created
    assert report["runs"][0]["label"] == f"{eval_world}/lr=1e-6"
    assert report["runs"][0]["pass_at_k"]["math500"]["1"]["value"] == 0.5
    # a None response is scored as the empty response ("" is correct for this scorer, "x" is not)
    gen = tmp_path / "gen.parquet"
    frame = pd.read_parquet(eval_world / "gen.parquet").iloc[:1]
    frame.to_parquet(gen)
    code, out, err = run(capsys, ["eval", str(gen), "--reward", f"{eval_world}/scorer.py:compute_score",
                                  "--json", str(tmp_path / "g.json")])
    assert code == 0, err
    assert json.loads((tmp_path / "g.json").read_text())["runs"][0]["pass_at_k"]["math500"]["1"]["value"] == 0.5
    assert snapshot(eval_world) == before


def test_eval_counts_an_identical_repeated_line_once(tmp_path, capsys):
    path = write_dump(tmp_path / "dup.jsonl", GOOD + [GOOD[0]])
    code, out, err = run(capsys, ["eval", str(path), "--json", str(tmp_path / "r.json")])
    assert code == 0, err
    assert "1 lines repeat an earlier line's uid with the same result" in out
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert runs[0]["samples_max"] == 4 and runs[0]["pass_at_k"]["math500"]["1"]["value"] == 0.5


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def data_world(tmp_path_factory) -> Path:
    world = tmp_path_factory.mktemp("data_world")
    (world / "in").mkdir()
    (world / "in" / "train.jsonl").write_text('{"problem": "q1", "answer": "1"}\n')
    (world / "in" / "test.jsonl").write_text('{"problem": "q2", "answer": "2"}\n')
    (world / "parts").mkdir()
    (world / "parts" / "part-0.jsonl").write_text('{"problem": "a", "answer": 1}\n')
    (world / "parts" / "part-1.jsonl").write_text('{"problem": "b", "answer": 2}\n{"problem": "c", "answer": NaN}\n')
    (world / "nan.jsonl").write_text('{"problem": "q", "answer": NaN}\n')
    (world / "dict.jsonl").write_text('{"problem": "q", "answer": {"x": 1}}\n')
    (world / "bool.json").write_text('[{"problem": "q", "answer": true}]')
    (world / "badbytes.jsonl").write_bytes(
        b'{"problem": "q", "answer": "1"}\n{"problem": "\xe9t\xe9", "answer": "2"}\n'  # Latin-1, not UTF-8
    )
    (world / "badbytes.csv").write_bytes(b"problem,answer\nq,1\nr\xff,2\n")
    (world / "extra.csv").write_text("problem,answer\nq,1,surplus\n")
    (world / "afile").write_text("not a folder\n")
    (world / "amc23.parquet").write_bytes((FIXTURES / "amc23.parquet").read_bytes())
    return world


DATA_CASES = [
    (["math500", "--input", "{w}/in", "--split", "validation", "--output", "{w}/o.parquet"],
     "{w}/in: no file for --split validation (a file is chosen when a folder or a part of its name is "
     "'validation'); files found: test.jsonl, train.jsonl"),
    (["math500", "--input", "{w}/in", "--output", "{w}/o.parquet"], "holds files of several splits"),
    (["math500", "--input", "{w}/in/test.jsonl", "--split", "train", "--output", "{w}/o.parquet"],
     "--split train: {w}/in/test.jsonl is one file"),
    (["math500", "--input", "{w}/nan.jsonl", "--output", "{w}/o.parquet"],
     "{w}/nan.jsonl row 0 column 'answer': answer is nan"),
    (["math500", "--input", "{w}/dict.jsonl", "--output", "{w}/o.parquet"],
     "{w}/dict.jsonl row 0 column 'answer': answer is a dict ({{'x': 1}})"),
    (["math500", "--input", "{w}/bool.json", "--output", "{w}/o.parquet"],
     "bool.json row 0 column 'answer': answer is a bool"),
    (["minerva", "--input", "{w}/parts", "--output", "{w}/o.parquet"], "{w}/parts/part-1.jsonl row 1 column 'answer'"),
    (["math500", "--input", "{w}/badbytes.jsonl", "--output", "{w}/o.parquet"],
     "{w}/badbytes.jsonl:2: not UTF-8 text (byte 0xe9 at column 14)"),
    (["math500", "--input", "{w}/badbytes.csv", "--output", "{w}/o.parquet"], "{w}/badbytes.csv:3: not UTF-8"),
    (["math500", "--input", "{w}/extra.csv", "--output", "{w}/o.parquet"], "extra.csv row 0 (line 2): more fields"),
    (["math500", "--input", "{w}/nan.jsonl", "--output", "{w}/in"], "--output {w}/in: is a directory"),
    (["math500", "--input", "{w}/nan.jsonl", "--output", "{w}/afile/o.parquet"],
     "{w}/afile is a file, not a directory"),
    (["math500", "--input", "{w}/nan.jsonl", "--output", "{w}/o.jsonl"],
     "--output {w}/o.jsonl: unknown format '.jsonl'"),
    (["math500", "--input", "{w}/in", "--split", "test", "--output", "{w}/in/o.parquet"],
     "--output {w}/in/o.parquet: lies inside the --input directory"),
    (["amc23", "--input", "{w}/amc23.parquet", "--output", "{w}/amc23.parquet"], "is the --input"),
    pytest.param(["math500", "--input", "{w}/nan.jsonl", "--output", "/sys/o.parquet"], "cannot write in /sys",
                 marks=unwritable),
    (["deepscaler", "--input", "{w}/nan.jsonl", "--output", "{w}/o.parquet", "--max-prompt-tokens", "0"],
     "argument --max-prompt-tokens"),
    (["synthetic", "--n", "0", "--output", "{w}/s.parquet"], "argument --n: expected an integer >= 1, got '0'"),
    (["synthetic", "--n", "5", "--max-operand", "0", "--output", "{w}/s.parquet"], "argument --max-operand"),
    (["synthetic", "--n", "5", "--kinds", "add,cube", "--output", "{w}/s.parquet"],
     "argument --kinds: unknown kinds ['cube']"),
    (["synthetic", "--n", "5", "--output", "{w}/afile/s.parquet"], "{w}/afile is a file, not a directory"),
]


@pytest.mark.parametrize("argv, needle", DATA_CASES)
def test_data_refuses_bad_input(data_world, capsys, argv, needle):
    check_case(capsys, data_world, ["data", *argv], 2, needle)


def test_data_warns_of_a_gpqa_record_with_two_equal_options(tmp_path, capsys):
    gpqa = tmp_path / "gpqa.csv"
    gpqa.write_text(
        "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n"
        "q1,right,w1,w2,w3\nq2,same,w1, same ,w3\n"
    )
    argv = ["data", "gpqa_diamond", "--input", str(gpqa), "--output", str(tmp_path / "g.parquet")]
    code, out, err = run(capsys, argv)
    assert code == 0 and "kept 2" in out
    assert err.count("\n") == 1 and f"warning: {gpqa} row 1: 'Correct Answer' and 'Incorrect Answer 2'" in err


def test_data_split_picks_name_parts_only(tmp_path, capsys):
    snapshot_dir = tmp_path / "hub" / "data"
    snapshot_dir.mkdir(parents=True)
    (snapshot_dir / "test-00000-of-00001.jsonl").write_text('{"problem": "q", "answer": "1"}\n')
    (snapshot_dir / "latest-notes.jsonl").write_text('{"problem": "r", "answer": "2"}\n')  # "test" inside a word
    code, out, err = run(capsys, ["data", "math500", "--input", str(tmp_path / "hub"), "--split", "test",
                                  "--output", str(tmp_path / "o.parquet")])
    assert code == 0, err
    assert "read 1 rows" in out and "latest" not in out


# ----------------------------------------------------------------------------- theory and simulate

THEORY_CASES = [
    (["--max-n", "1000000000000"], "argument --max-n: scanning N = 1..1000000000000"),
    (["--max-n", "1e12"], "argument --max-n: expected an integer >= 1, got '1e12'"),
    (["--max-n", "0"], "argument --max-n"),
    (["--rho", "0"], "argument --rho: expected a finite number in (0, 1), got '0'"),
    (["--rho", "1"], "argument --rho"),
    (["--mu", "nan"], "argument --mu"),
    (["--mu", "1.5"], "argument --mu"),
    (["--n", "0"], "argument --n"),
    (["--gamma", "-1"], "argument --gamma"),
]


@pytest.mark.parametrize("argv, needle", THEORY_CASES)
def test_theory_refuses_bad_flags(tmp_path, capsys, argv, needle):
    check_case(capsys, tmp_path, ["theory", *argv], 2, needle)


SIMULATE_CASES = [
    (["--seeds", "-1"], "argument --seeds: expected an integer >= 0, got '-1'"),
    (["--seeds", "0", "1", "0"], "argument --seeds: 0 given more than once"),
    (["--n", "8", "8"], "argument --n: 8 given more than once"),
    (["--n", "1"], "argument --n"),
    (["--gamma", "inf"], "argument --gamma"),
    (["--adam-eps", "0"], "argument --adam-eps: expected a finite number > 0, got '0'"),
    (["--adam-eps", "-1e-8"], "argument --adam-eps"),
    (["--optimizer", "sgd", "--adam-eps", "1e-6"], "argument --adam-eps: sets Adam and AdamW"),
    (["--threads", "0"], "argument --threads: expected an integer >= 1"),
    (["--weight-decay", "-1"], "argument --weight-decay: expected a finite number >= 0"),
    (["--weight-decay", "0.1"], "argument --weight-decay: applies to --optimizer adamw"),
    (["--lr", "0"], "argument --lr"),
    (["--steps", "0"], "argument --steps"),
    (["--log-every", "0"], "argument --log-every"),
    (["--out", "{w}/afile/sim"], "--out {w}/afile/sim: {w}/afile is a file, not a directory"),
    (["--out", "{w}/afile"], "--out {w}/afile: is a file, not a directory"),
    (["--out", "{w}/blocked"], "--out {w}/blocked: {w}/blocked/final.csv is a directory"),
    pytest.param(["--out", "/sys/sim"], "--out /sys/sim: cannot write in /sys", marks=unwritable),
]


@pytest.mark.parametrize("argv, needle", SIMULATE_CASES)
def test_simulate_refuses_bad_flags(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)  # the default --out is relative: nothing may appear there either
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "blocked" / "final.csv").mkdir(parents=True)
    argv = argv if "--out" in argv else [*argv, "--out", "{w}/sim"]
    check_case(capsys, tmp_path, ["simulate", "--quick", *argv], 2, needle)
    assert not (tmp_path / "sim").exists() and not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- end to end, and the helpers


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["eval", "{w}/val", "--json", "{w}/val/0.jsonl"], "is the input of run"),
        (["data", "math500", "--input", "{w}/in", "--split", "validation", "--output", "{w}/o.parquet"],
         "files found: test.jsonl, train.jsonl"),
        (["simulate", "--seeds", "-1", "--out", "{w}/sim"], "argument --seeds"),
    ],
)
def test_subprocess_prints_one_line_and_no_traceback(tmp_path, argv, needle):
    write_dump(tmp_path / "val" / "0.jsonl", GOOD)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "train.jsonl").write_text('{"problem": "q1", "answer": "1"}\n')
    (tmp_path / "in" / "test.jsonl").write_text('{"problem": "q2", "answer": "2"}\n')
    before = snapshot(tmp_path)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "verl_focal.cli", *[a.format(w=tmp_path) for a in argv]],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert_refused(result.returncode, result.stdout, result.stderr, 2, needle)
    assert snapshot(tmp_path) == before


def test_replacing_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with replacing(target) as temporary:
        assert temporary.suffix == ".json" and temporary.parent == tmp_path
        temporary.write_text("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_decode_and_output_checks_name_the_place(tmp_path):
    with pytest.raises(UserFileError, match=r"f\.txt:3: not UTF-8 text \(byte 0xc3 at column 2\)"):
        decode_utf8(b"ok\nok\na\xc3(\n", "f.txt")
    assert check_output_file(tmp_path / "new" / "deeper" / "x.csv", "--csv") == tmp_path / "new" / "deeper" / "x.csv"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_data_accepts_a_bom_and_an_empty_file_next_to_others(tmp_path, capsys):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "part-0.csv").write_bytes("\ufeffproblem,answer\nq,1\n".encode())  # as Excel saves UTF-8 CSV
    (folder / "part-1.jsonl").write_text("")
    code, out, err = run(capsys, ["data", "math500", "--input", str(folder), "--output", str(tmp_path / "o.parquet")])
    assert code == 0, err
    assert "read 1 rows" in out and "kept 1" in out
