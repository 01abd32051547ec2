"""Local model: decisions per second, and its ratio to raw llama.cpp token throughput.

Usage::

    .venv/bin/python bench/local_model.py

Thirty yes/no watch decisions (3 personas x 10 movies, the default ``scored_watch`` prompt
with a persona of about 100 tokens, 130-200 tokens in all) are scored by
``LocalLlamaChat.score_options``: one forward pass over the part of the prompt the KV cache
does not hold yet, then the next-token log-probabilities of " yes" and " no". The same
prompts are then run through raw llama.cpp: a full prompt evaluation (prompt tokens/s), and
``create_completion(prompt, max_tokens=16)`` as a chat-style client would ask for an
answer (prompt + generated tokens/s). Gemma 3 270M Q4_K_M, in process, all CPUs of the
process. Writes the section between ``<!-- local-model:start -->`` and
``<!-- local-model:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- local-model:start -->", "<!-- local-model:end -->"

PERSONAS = [
    ("Alice", "Sci-Fi, Action, Thriller", "Romance, Musical, Children's",
     "Star Wars (1977), The Matrix (1999), Alien (1979), Terminator 2 (1991), "
     "Blade Runner (1982), Total Recall (1990), The Fifth Element (1997), Die Hard (1988)"),
    ("Bruno", "Comedy, Romance, Drama", "Horror, War, Western",
     "When Harry Met Sally... (1989), Groundhog Day (1993), Forrest Gump (1994), "
     "Four Weddings and a Funeral (1994), Sleepless in Seattle (1993), Clueless (1995), "
     "Sense and Sensibility (1995), The Princess Bride (1987)"),
    ("Chen", "Crime, Film-Noir, Mystery", "Animation, Fantasy, Musical",
     "The Godfather (1972), Pulp Fiction (1994), Fargo (1996), The Usual Suspects (1995), "
     "L.A. Confidential (1997), Chinatown (1974), Reservoir Dogs (1992), Vertigo (1958)"),
]
ITEMS = [
    "id 50, Star Trek: First Contact (1996), Action|Sci-Fi, mean rating 3.7: the Borg travel "
    "back in time to stop humanity's first contact with an alien species.",
    "id 88, Sleepless in Seattle (1993), Comedy|Romance, mean rating 3.5: a widower's son "
    "calls a radio show, and a journalist across the country falls for the father.",
    "id 127, The Godfather: Part II (1974), Crime|Drama, mean rating 4.2: the early life of "
    "Vito Corleone and his son Michael's grip on the family business.",
    "id 1, Toy Story (1995), Animation|Children's|Comedy, mean rating 3.9: a cowboy doll is "
    "threatened when a new spaceman toy becomes his owner's favourite.",
    "id 183, Alien (1979), Horror|Sci-Fi|Thriller, mean rating 4.0: the crew of a commercial "
    "spaceship meets a deadly creature after answering a distress call.",
    "id 96, Terminator 2: Judgment Day (1991), Action|Sci-Fi, mean rating 4.0: a cyborg "
    "protects a boy from a more advanced, shape-shifting killing machine.",
    "id 210, Indiana Jones and the Last Crusade (1989), Action|Adventure, mean rating 3.9: "
    "an archaeologist searches for his father and the Holy Grail.",
    "id 735, Philadelphia (1993), Drama, mean rating 3.7: a lawyer with AIDS sues the firm "
    "that fired him, helped by a homophobic attorney.",
    "id 98, The Silence of the Lambs (1991), Drama|Thriller, mean rating 4.3: a young FBI "
    "trainee seeks the help of an imprisoned cannibal to catch a serial killer.",
    "id 423, E.T. the Extra-Terrestrial (1982), Children's|Drama|Fantasy|Sci-Fi, mean "
    "rating 3.8: a boy befriends a stranded alien and helps him get home.",
]


def prompts() -> list[str]:
    from scenarios.schema import DEFAULT_SCORED_WATCH

    return [DEFAULT_SCORED_WATCH.format(role=name, liked_genres=likes, disliked_genres=dislikes,
                                        liked_titles=titles, item=item)
            for name, likes, dislikes, titles in PERSONAS for item in ITEMS]


def measure(n_ctx: int) -> dict[str, Any]:
    import llama_cpp

    from agents.llm.backends import LocalLlamaChat

    model = LocalLlamaChat(n_ctx=n_ctx, max_tokens=16)
    t0 = time.perf_counter()
    llm = model.load()
    load_s = time.perf_counter() - t0
    ps = prompts()
    n_tok = [len(llm.tokenize(p.encode("utf-8"), add_bos=True)) for p in ps]
    model.score_options(ps[0], ["yes", "no"])  # warm-up: first decode allocates buffers

    def decisions(fresh: bool) -> tuple[list[float], int]:
        model.reset_state()
        before = model.evaluated_tokens
        times = []
        for p in ps:
            if fresh:
                model.reset_state()
            t = time.perf_counter()
            model.score_options(p, ["yes", "no"])
            times.append(time.perf_counter() - t)
        return times, model.evaluated_tokens - before

    reuse, reuse_tokens = decisions(fresh=False)
    fresh, fresh_tokens = decisions(fresh=True)

    # Raw llama.cpp on the same prompts: full prompt evaluation, then a 16-token answer.
    eval_s = 0.0
    for p in ps:
        toks = llm.tokenize(p.encode("utf-8"), add_bos=True)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        llm.n_tokens = 0
        t = time.perf_counter()
        llm.eval(toks)
        eval_s += time.perf_counter() - t
    gen_s, gen_in, gen_out = 0.0, 0, 0
    for p in ps:
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        llm.n_tokens = 0
        t = time.perf_counter()
        out = llm.create_completion(p, max_tokens=16, temperature=0.0)
        gen_s += time.perf_counter() - t
        gen_in += int(out["usage"]["prompt_tokens"])
        gen_out += int(out["usage"]["completion_tokens"])
    model.reset_state()

    n = len(ps)
    reuse_s = sum(reuse)
    from agents.llm.backends import uses_plain_cpu_buffers

    return {
        "plain_buffers": uses_plain_cpu_buffers(),
        "n": n, "load_s": load_s, "tokens_min": min(n_tok), "tokens_max": max(n_tok),
        "tokens_mean": statistics.mean(n_tok),
        "reuse_dps": n / reuse_s, "reuse_ms": 1000 * reuse_s / n,
        "reuse_p90_ms": 1000 * sorted(reuse)[int(0.9 * (n - 1))],
        "reuse_tokens": reuse_tokens / n,
        "fresh_dps": n / sum(fresh), "fresh_ms": 1000 * sum(fresh) / n,
        "fresh_tokens": fresh_tokens / n,
        "prompt_tps": sum(n_tok) / eval_s,
        "completion_tps": (gen_in + gen_out) / gen_s, "completion_s": gen_s / n,
        "gen_out": gen_out / n,
        "llama_cpp": llama_cpp.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n-ctx", type=int, default=1024)
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    r = measure(args.n_ctx)
    ratio = r["reuse_dps"] / r["prompt_tps"]
    speedup = r["completion_s"] * r["reuse_dps"]
    print(f"{r['n']} prompts of {r['tokens_min']}-{r['tokens_max']} tokens: scored decisions "
          f"{r['reuse_dps']:.2f}/s ({r['reuse_ms']:.0f} ms each, {r['reuse_tokens']:.0f} "
          f"tokens evaluated) with prefix reuse, {r['fresh_dps']:.2f}/s "
          f"({r['fresh_ms']:.0f} ms) without; raw llama.cpp prompt eval "
          f"{r['prompt_tps']:.0f} tokens/s, 16-token completion {r['completion_s']:.2f} s "
          f"({r['completion_tps']:.0f} tokens/s); decisions/s per raw prompt token/s "
          f"{ratio:.4f}; {speedup:.1f}x faster than a 16-token completion")
    if not args.no_doc:
        write_section(START, END, [
            "## Local model: scored decisions vs raw llama.cpp throughput",
            "",
            f"Gemma 3 270M Q4_K_M (base model) in process through llama-cpp-python "
            f"{r['llama_cpp']}, n_ctx {args.n_ctx}. {r['n']} yes/no watch decisions: 3 "
            "personas x 10 movies with the default `scored_watch` prompt, "
            f"{r['tokens_min']}-{r['tokens_max']} tokens (mean {r['tokens_mean']:.0f}), "
            "persona first, so consecutive prompts of a persona share a prefix. A scored "
            "decision is `LocalLlamaChat.score_options(prompt, ['yes', 'no'])`: one forward "
            "pass over the tokens the KV cache does not hold, then the next-token "
            "log-probabilities of the two answers (always a valid answer). Raw llama.cpp: a "
            "fresh evaluation of each whole prompt, and `create_completion(prompt, "
            "max_tokens=16)` as a client asking for a short answer would. Model load "
            f"{r['load_s']:.1f} s, not included. Weights in "
            + ("plain CPU buffers (this CPU has AMX, whose llama.cpp kernels crash in this "
               "VM; see `agents/llm/backends.py`)" if r["plain_buffers"]
               else "llama.cpp's default buffers")
            + f". The CPUs are shared: 1-minute load average {load_before:.2f} before the "
            "run.",
            "",
            "| measure | value |",
            "| --- | ---: |",
            f"| scored decisions, prefix reuse | **{r['reuse_dps']:.2f} /s** "
            f"({r['reuse_ms']:.0f} ms each, p90 {r['reuse_p90_ms']:.0f} ms; "
            f"{r['reuse_tokens']:.0f} tokens evaluated per decision) |",
            f"| scored decisions, no reuse (full prompt each time) | {r['fresh_dps']:.2f} /s "
            f"({r['fresh_ms']:.0f} ms each; {r['fresh_tokens']:.0f} tokens) |",
            f"| raw llama.cpp prompt evaluation | {r['prompt_tps']:.0f} tokens/s |",
            f"| raw llama.cpp 16-token completion | {r['completion_s']:.2f} s per prompt "
            f"({r['completion_tps']:.0f} tokens/s, {r['gen_out']:.1f} tokens generated) |",
            f"| ratio: decisions/s per raw prompt token/s | {ratio:.4f} (a decision costs "
            f"the time of {1 / ratio:.0f} raw prompt tokens) |",
            f"| scored decision vs 16-token completion | {speedup:.1f}x faster |",
        ], __file__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
