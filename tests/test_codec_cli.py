"""`tapeout quantize-error` and the numpy safetensors reader, on files written here."""

import json
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from tapeout.cli import app
from tapeout.errors import TapeoutError
from tapeout.numerics import codec, qerror, tensorfile

runner = CliRunner()


@pytest.fixture()
def model_file(tmp_path):
    rng = np.random.default_rng(11)
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((128, 256)).astype(np.float16),
        "model.layers.0.mlp.down_proj.weight": (rng.standard_normal((256, 384)) * 0.02).astype(np.float32),
        "model.layers.0.input_layernorm.weight": np.ones(256, np.float32),
        "model.step": np.array([3], np.int64),
    }
    p = tmp_path / "model.safetensors"
    tensorfile.write(p, tensors, metadata={"format": "pt"})
    return p, tensors


def test_reader_round_trips_and_decodes_bf16(tmp_path, model_file):
    p, tensors = model_file
    infos, meta = tensorfile.read_header(p)
    assert meta == {"format": "pt"} and [i.name for i in infos] == list(tensors)
    for info, arr in tensorfile.iter_tensors(p):
        assert np.array_equal(arr, tensors[info.name])
    # a bf16 tensor, written by hand: bf16(x) is the top half of float32(x)
    x = np.array([1.5, -2.0, 3.140625], np.float32)
    raw = (x.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"t": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    q = tmp_path / "bf16.safetensors"
    q.write_bytes(struct.pack("<Q", len(header)) + header + raw)
    (info,), _ = tensorfile.read_header(q)
    assert np.array_equal(tensorfile.load(q, info), x)


def test_bad_files_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00")
    with pytest.raises(TapeoutError, match="not a safetensors file"):
        tensorfile.read_header(bad)
    h = json.dumps({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}).encode()
    bad.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 16)
    with pytest.raises(TapeoutError, match="offsets"):
        tensorfile.read_header(bad)
    r = runner.invoke(app, ["quantize-error", str(bad), "--weights", "fp6"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_quantize_error_cli_json(model_file):
    p, tensors = model_file
    r = runner.invoke(app, ["quantize-error", str(p), "--weights", "fp6_e3m2", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    names = [t["name"] for t in d["tensors"]]
    assert names == ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"]
    assert set(d["skipped"]) == {"model.layers.0.input_layernorm.weight", "model.step"}
    # per-tensor figures equal the codec's on the same tensor
    for t in d["tensors"]:
        x = tensors[t["name"]]
        fid, nbytes = codec.quantization_error(x, "fp6_e3m2")
        assert t["mse"] == pytest.approx(fid.mse, rel=1e-12) and t["quantized_bytes"] == nbytes
        assert t["original_bytes"] == x.nbytes
    # per-channel fp16 scales: 6 bits per weight + 16 bits per row
    assert d["tensors"][0]["quantized_bytes"] == 128 * 256 * 6 // 8 + 128 * 2
    tot = d["total"]
    assert tot["original_bytes"] == sum(t["original_bytes"] for t in d["tensors"])
    all_x = np.concatenate([tensors[n].astype(np.float64).ravel() for n in names])
    all_y = np.concatenate([codec.round_trip(tensors[n], "fp6_e3m2").ravel() for n in names])
    assert tot["mse"] == pytest.approx(np.mean((all_y - all_x) ** 2), rel=1e-9)


def test_quantize_error_table_and_options(model_file):
    p, _ = model_file
    r = runner.invoke(app, ["quantize-error", str(p), "--weights", "int4_g128", "--all", "--match", "layers"])
    assert r.exit_code == 0, r.output
    assert "input_layernorm" in r.stdout and "total" in r.stdout and "SQNR" in r.stdout
    r = runner.invoke(app, ["quantize-error", str(p), "--weights", "fp7"])
    assert r.exit_code == 2 and "weights" in r.stderr


def test_chunked_per_tensor_scale_equals_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((512, 64)).astype(np.float32)
    x[300, 5] = 40.0  # the tensor's absmax sits in a later chunk
    p = tmp_path / "one.safetensors"
    tensorfile.write(p, {"w": x})
    monkeypatch.setattr(qerror, "CHUNK", 64 * 16)  # 16 rows per chunk
    res = qerror.quantize_file(p, "fp8")
    whole, _ = codec.quantization_error(x, "fp8")
    assert res.tensors[0].fidelity.mse == pytest.approx(whole.mse, rel=1e-12)
