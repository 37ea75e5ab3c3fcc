"""Rows in the shared reference data's common schema, for small hand-made data directories in tests."""

import csv
import io

HEADER = ("source,source_detail,hardware,hardware_class,num_gpus,software,model,op_or_stage,M,N,K,batch,"
          "input_len,output_len,weight_precision,act_precision,kv_precision,sparsity,tp,metric,value,unit,"
          "confidence,notes\n")


def gemm_row(m, value, confidence="exact"):
    return (f'"vidur data/profiling/compute/a100/x/mlp.csv",row,A100,A100 (variant unstated),1,sw,x,'
            f'"mlp_down_proj: MLP down projection",{m},4096,11008,{m},,,fp16,fp16,,0,1,op_latency_median,'
            f"{value},ms,{confidence},\n")


COLUMNS = HEADER.strip().split(",")


def csv_text(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    return buf.getvalue()


def fp6_row(batch, fmt, value, confidence="exact", metric="tokens_per_gpu_second", model="OPT-30B", gpus=1):
    return dict(hardware_class="A100-80GB-SXM", num_gpus=gpus, model=model, op_or_stage="e2e generation throughput",
                batch=batch, input_len=512, output_len=1536, weight_precision=fmt, act_precision="fp16",
                kv_precision="fp16", sparsity=0, tp=gpus, metric=metric, value=value, confidence=confidence,
                software="DeepSpeed")


def flash_row(software, sparsity, value, confidence="approx_read_from_figure (+-5%)"):
    return dict(hardware_class="A100 (variant unstated)", num_gpus=2, software=software, model="OPT-66B",
                op_or_stage="e2e generation throughput", batch=8, input_len="64 (inferred)",
                output_len="512 (inferred)", weight_precision="fp16", act_precision="fp16", kv_precision="fp16",
                sparsity=sparsity, tp=2, metric="tokens_per_gpu_second", value=value, confidence=confidence)


def llama_row(cls, stage, n, fmt, value, gpus=1, model="Meta-Llama-3-8B", confidence="exact"):
    pp = stage == "pp"
    return dict(hardware=cls, hardware_class=cls, num_gpus=gpus, model=model,
                op_or_stage="prefill (prompt processing)" if pp else "decode (text generation)", batch=1,
                input_len=n if pp else 0, output_len=0 if pp else n,
                weight_precision="GGUF Q4_K_M (~4.8 bits/weight)" if fmt == "q4" else "fp16 (GGUF F16)",
                kv_precision="fp16", tp=1, metric="prefill_tokens_per_s" if pp else "decode_tokens_per_s",
                value=value, confidence=confidence)
