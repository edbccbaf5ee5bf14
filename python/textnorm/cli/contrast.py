"""``textnorm contrast``: contrastive prompt sets for a file of prompts, written in the TIA2
format ``{target: [contrastive, ...]}``.

INPUT holds one prompt a line (blank lines skipped), or a JSON list of prompts (a JSON object
uses its keys, so a TIA2 file can be regenerated); ``-`` reads standard input. The rule-based
generator runs first; with ``--llm-base-url`` a chat-completions endpoint writes the sets of
the prompts no rule covers (or of all prompts with ``--llm-for all``).

Examples:
  textnorm contrast prompts.txt -o sets.json
  textnorm contrast prompts.json -o sets.json --rules count drop hybrid --k 8 --seed 1
  textnorm contrast prompts.txt -o sets.json --llm-base-url http://127.0.0.1:8000/v1 \\
      --llm-model Qwen2.5-7B-Instruct --llm-cache llm.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Rule-based generation runs in chunks of this many prompts so the progress bar moves.
CHUNK = 10_000


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "contrast", help="contrastive prompt sets (rules, optionally a language model) to TIA2 JSON",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="prompts: one a line, or a JSON list; '-' for stdin")
    p.add_argument("-o", "--output", type=Path, required=True, help="the TIA2 JSON file to write")
    p.add_argument("--rules", nargs="+", default=None, metavar="RULE",
                   help="rules to run, in order (default: all but joint_count): drop count joint_count hybrid "
                        "object color attribute binding relation swap (comma-separated works too)")
    p.add_argument("--k", type=int, default=None, help="keep a seeded sample of at most K prompts per set")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--lexicon", type=Path, help="a JSON or TOML lexicon extending the default")
    p.add_argument("--replace-lexicon", action="store_true", help="the --lexicon file replaces the default")
    g = p.add_argument_group("language model (chat-completions endpoint)")
    g.add_argument("--llm-base-url", help="e.g. http://127.0.0.1:8000/v1; enables LLM-written sets")
    g.add_argument("--llm-model", default="default", help="model name sent to the endpoint")
    g.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", help="environment variable with the API key")
    g.add_argument("--llm-for", choices=("empty", "all"), default="empty",
                   help="prompts the LLM writes sets for: those the rules leave empty (default) or all")
    g.add_argument("--llm-k", type=int, default=10, help="prompts to ask the LLM for, per target")
    g.add_argument("--llm-cache", type=Path, help="JSONL cache of answers (resumes interrupted runs)")
    g.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per request")
    g.add_argument("--llm-retries", type=int, default=4, help="retries per request")
    g.add_argument("--paraphrase-threshold", type=float, default=0.975,
                   help="drop LLM prompts this similar to the target (all-MiniLM-L6-v2 cosine)")
    g.add_argument("--no-paraphrase-filter", action="store_true", help="keep LLM paraphrases")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


def read_prompts(source: str) -> list[str]:
    """Prompts from a file (or '-' for stdin): a JSON list, a JSON object's keys, or lines."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        data = json.loads(text)
        items = list(data) if isinstance(data, (list, dict)) else None
        if items is None or not all(isinstance(x, str) for x in items):
            raise ValueError(f"{source}: expected a JSON list of strings (or an object keyed by prompts)")
        return items
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


class _Progress:
    """A tqdm bar on stderr when tqdm is installed, else a line every 10%."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.enabled, self.done, self.bar = total, desc, enabled, 0, None
        if enabled:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped]

                self.bar = tqdm(total=total, desc=desc, unit="prompt", file=sys.stderr)
            except ImportError:
                pass

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(done - self.done)
        elif self.total and done * 10 // self.total != self.done * 10 // self.total:
            print(f"{self.desc}: {done}/{self.total}", file=sys.stderr)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    import textnorm
    from textnorm.contrast import ContrastiveSets, Lexicon

    try:
        prompts = read_prompts(args.input)
        rules = None if args.rules is None else [r for x in args.rules for r in x.split(",") if r]
        lexicon = None
        if args.lexicon is not None:
            lexicon = Lexicon.from_file(args.lexicon, extend=not args.replace_lexicon)
        show = not args.quiet and len(prompts) > CHUNK
        bar = _Progress(len(prompts), "rules", show)
        targets: list[str] = []
        sets: list[list[str]] = []
        labels: list[list[str]] = []
        for start in range(0, max(len(prompts), 1), CHUNK):
            chunk = textnorm.contrast(prompts[start : start + CHUNK], rules=rules, k=args.k, seed=args.seed,
                                      lexicon=lexicon)
            targets += chunk.targets
            sets += list(chunk)
            labels += [chunk.rules(i) for i in range(len(chunk))]
            bar.update(len(targets))
        bar.close()
        if args.llm_base_url:
            _llm(args, prompts, sets, labels)
        out = ContrastiveSets(targets, sets, rules=labels)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        out.to_json(args.output)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"textnorm contrast: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        n = sum(len(s) for s in sets)
        print(f"wrote {len(targets)} prompts ({n} contrastive, {len(out.empty())} empty) to {args.output}",
              file=sys.stderr)
    return 0


def _llm(args: argparse.Namespace, prompts: list[str], sets: list[list[str]], labels: list[list[str]]) -> None:
    from textnorm.llm import OpenAICompatible, ParaphraseFilter, contrast_llm

    todo = [i for i, s in enumerate(sets) if args.llm_for == "all" or not s]
    if not todo:
        return
    backend = OpenAICompatible(args.llm_base_url, args.llm_model, api_key_env=args.llm_api_key_env,
                               timeout=args.llm_timeout, max_retries=args.llm_retries)
    filt = None if args.no_paraphrase_filter else ParaphraseFilter(args.paraphrase_threshold)
    bar = _Progress(len(todo), "llm", not args.quiet)
    got = contrast_llm([prompts[i] for i in todo], backend=backend, k=args.llm_k, cache=args.llm_cache,
                       filter=filt, progress=lambda done, total: bar.update(done))
    bar.close()
    for j, i in enumerate(todo):
        extra = [c for c in got[j] if c not in sets[i]]
        sets[i] = sets[i] + extra
        labels[i] = labels[i] + ["llm"] * len(extra)
