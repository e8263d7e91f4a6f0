"""Evaluate an agent on a Bench2Drive route set like the leaderboard does, in parallel worker processes.

    python -m tools.bench2drive_eval agent=privileged_rules out=runs/b2d_rules [workers=2] [route_ids=0-9,15]
        [backend=builtin|carla] [routes=builtin|ROUTES.xml] [checkpoint=PATH] [seed=0] [batch=0] [progress=true]

Arguments are Hydra-style `key=value` pairs checked against `EvalConfig` (an unknown key or a bad value
is a one-line error, exit 2). Output under `out`:

    routes.xml                        the evaluated routes (leaderboard-2.0 XML; `tools.bench2drive_merge --routes`)
    results/RouteScenario_<id>.json   one leaderboard checkpoint per route (spec §3.8a), written atomically
    metrics/<save_name>/metric_info.json   the ego kinematics of that route (Comfortness)
    summary.json, merged.json, merged_ability.json   the merged figures (DS, SR, Efficiency, Comfortness, abilities)

A rerun resumes: routes whose result parses and whose status is not Failed / crashed (Bench2Drive's resume
rule, spec §3.9) are skipped. A route whose run raises counts 0 ('Failed - Simulation crashed').
`python -m tools.bench2drive_merge --results OUT/results --metrics OUT/metrics --routes OUT/routes.xml`
prints the same figures.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

RESULTS_DIR, METRICS_DIR, ROUTES_XML, SUMMARY_JSON = "results", "metrics", "routes.xml", "summary.json"
RERUN_STATUSES = ("Failed", "Failed - Simulation crashed", "Failed - Agent crashed")
"""Statuses a resume runs again (Bench2Drive's leaderboard_evaluator resume rule)."""
CRASH_REASON = "Simulation crashed"


@dataclass
class EvalConfig:
    """One evaluation run (`python -m tools.bench2drive_eval key=value ...`)."""

    agent: str = "privileged_rules"
    """Registered agent name (agents.AGENTS)."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the agent, e.g. agent_kwargs.throttle=0.3 for route_steer."""
    out: str = "runs/bench2drive_eval"
    """Output folder (created; an existing one is resumed)."""
    backend: str = "builtin"
    """builtin: our batched world; carla: one CARLA server per worker (envs.bench2drive.carla_backend)."""
    routes: str = "builtin"
    """builtin: the 220 built-in routes; else the path of a Bench2Drive route XML (backend=carla)."""
    route_ids: str | None = None
    """Subset by position in the route set, e.g. "0-9,15"; None: every route."""
    workers: int = 2
    """Worker processes (spawned); 0 runs in this process (debugging, tests)."""
    batch: int = 0
    """Routes one worker steps together in its vector env; 0: all of its routes at once (builtin)."""
    checkpoint: str | None = None
    """Trained agent checkpoint (agents.load_agent); overrides `agent`'s fresh weights."""
    seed: int = 0
    """Seeds every env reset (ControlLoss noise) and the agent's generator."""
    threads: int = 1
    """torch threads per worker."""
    device: str = "cpu"
    max_actors: int = 32
    """Nearest actors in the privileged observation (an agent's own `observation` dict overrides it)."""
    carla_port: int = 30000
    carla_tm_port: int = 50000
    carla_port_step: int = 150
    """Worker i uses port carla_port + carla_port_step * i (Bench2Drive's multi-GPU scripts: 30000 + 150 i)."""
    carla_server_command: str | None = None
    """Shell command that starts a server ({port}, {gpu} are filled in); None: servers are already running."""
    progress: bool = True
    """Show a tqdm progress bar over routes."""

    def __post_init__(self):
        if self.backend not in ("builtin", "carla"):
            raise ValueError(f"backend={self.backend!r}: must be 'builtin' or 'carla'")
        if self.backend == "carla" and self.routes == "builtin":
            raise ValueError("routes='builtin': backend=carla needs the path of a Bench2Drive route XML")
        for name, low in (("workers", 0), ("batch", 0), ("threads", 1), ("max_actors", 1), ("carla_port_step", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: must be an int >= {low}")


def parse_args(argv: Sequence[str]) -> EvalConfig:
    """`key=value` arguments -> EvalConfig (OmegaConf structured merge: unknown keys and bad types are errors)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    bad = [a for a in argv if "=" not in a or a.startswith("-")]
    if bad:
        raise ValueError(f"argument {bad[0]!r}: expected key=value (keys: {', '.join(EvalConfig.__dataclass_fields__)})")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(EvalConfig), OmegaConf.from_dotlist(list(argv)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ValueError(str(error).splitlines()[0]) from None


def parse_route_ids(text: str | None, count: int) -> list[int]:
    """"0-9,15" -> [0, ..., 9, 15] (positions in a route set of `count` routes, sorted, unique)."""
    if text is None or str(text).strip() in ("", "all"):
        return list(range(count))
    ids: set[int] = set()
    for part in str(text).split(","):
        try:
            low, _, high = part.strip().partition("-")
            first, last = int(low), int(high) if high else int(low)
        except ValueError:
            raise ValueError(f"route_ids={text!r}: {part!r} is not N or N-M") from None
        if not 0 <= first <= last < count:
            raise ValueError(f"route_ids={text!r}: {part!r} is outside 0-{count - 1}")
        ids.update(range(first, last + 1))
    return sorted(ids)


# --- what is already written ------------------------------------------------------------------------------

def finished_record(path: Path) -> dict | None:
    """The route record of a result file if it counts as done (parses, status not in RERUN_STATUSES), else None."""
    from envs.metrics.bench2drive_results import parse_record

    try:
        records = json.loads(path.read_text(encoding="utf-8"))["_checkpoint"]["records"]
        record = records[0]
        parse_record(record)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return None if record.get("status") in RERUN_STATUSES else record


def routes_to_run(out: Path, entries: Sequence["RouteEntry"]) -> list["RouteEntry"]:
    """Routes whose result is missing, unreadable, or Failed / crashed (they run again)."""
    return [e for e in entries if finished_record(result_path(out, e.route_id)) is None]


# --- the route set ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouteEntry:
    """One route of the evaluated set: its position (the env's route id), XML id, type and town."""

    position: int
    route_id: str
    scenario_type: str | None
    town: str
    has_scenario: bool = True


def route_set(cfg: EvalConfig) -> list[RouteEntry]:
    """Every route of `cfg.routes` in order (built-in: the 220 routes, towns resolved without building)."""
    if cfg.routes == "builtin":
        from scenarios.bench2drive import builtin_route_set

        return [RouteEntry(r.index, r.route_id, r.scenario_type, r.town) for r in builtin_route_set()]
    from envs.backends.bench2drive_routes import read_routes

    return [RouteEntry(i, r.route_id, r.scenario_type, r.town, r.has_scenario) for i, r in enumerate(read_routes(cfg.routes))]


def write_routes_xml(cfg: EvalConfig, entries: Sequence[RouteEntry], path: Path) -> None:
    """The evaluated routes as a route XML for tools.bench2drive_merge (built-in: H3's writer; XML: a copy)."""
    from envs.backends.bench2drive_routes import read_routes

    try:
        if [r.route_id for r in read_routes(path)] == [e.route_id for e in entries]:
            return                                  # resumed: the file already lists these routes
    except ValueError:
        pass
    if cfg.routes != "builtin":
        text = Path(cfg.routes).read_text(encoding="utf-8")
        temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        return
    from scenarios.bench2drive import build_builtin_route, write_route_xml

    write_route_xml([build_builtin_route(e.position) for e in entries], path)


# --- one worker: a vector env over a chunk of routes ------------------------------------------------------

class _RouteQueue:
    """Feeds the vector env's autoreset the chunk's routes in order (in place of its random draw); once the
    chunk is used up, finished rows restart on a filler route whose result is ignored."""

    def __init__(self, positions: Sequence[int], filler: int):
        self.pending = list(positions)
        self.filler = filler
        self.drawn: list[int | None] = []

    def take(self, count: int) -> list[int | None]:
        taken = [self.pending.pop(0) if self.pending else None for _ in range(count)]
        self.drawn = taken
        return taken

    def draw(self, rng, count: int) -> list[int]:       # signature of envs.bench2drive.env.RouteSource.draw
        return [self.filler if p is None else p for p in self.take(count)]


def _agent(cfg: EvalConfig):
    from agents import load_agent, make_agent

    agent = (load_agent(cfg.checkpoint, map_location=cfg.device) if cfg.checkpoint
             else make_agent(cfg.agent, **dict(cfg.agent_kwargs)))
    if hasattr(agent, "to"):
        agent = agent.to(cfg.device)
    if hasattr(agent, "eval"):
        agent.eval()
    return agent


def _env(cfg: EvalConfig, agent, positions: Sequence[int], num_envs: int, worker: int):
    from envs.bench2drive.env import Bench2DriveConfig, Bench2DriveVectorEnv
    from envs.bench2drive.observation import ObservationConfig
    from envs.sim.camera import NAVSIM_CAMERA_NAMES

    inputs = getattr(agent, "inputs", frozenset())
    wanted = {"privileged": bool(getattr(agent, "privileged", False)) or "privileged" in inputs,
              "max_actors": cfg.max_actors, **getattr(agent, "observation", {})}
    obs = ObservationConfig(cameras=tuple(c for c in NAVSIM_CAMERA_NAMES if c in inputs), bev="bev" in inputs,
                            **wanted)
    carla = None
    if cfg.backend == "carla":
        from envs.bench2drive.carla_backend import CarlaConfig

        carla = CarlaConfig(server_command=cfg.carla_server_command, gpu=worker, device=cfg.device).for_worker(
            worker, cfg.carla_port, cfg.carla_tm_port, cfg.carla_port_step)
    routes = tuple(positions) if cfg.routes == "builtin" else cfg.routes
    env_cfg = Bench2DriveConfig(backend=cfg.backend, routes=routes, obs=obs, device=cfg.device, carla=carla)
    return Bench2DriveVectorEnv(num_envs=num_envs, config=env_cfg)


def _act(agent, obs, generator):
    import torch

    with torch.no_grad():
        return agent.act(obs, generator)


def run_routes(cfg: EvalConfig, agent, positions: Sequence[int], worker: int,
               on_done: Callable[[int, dict, dict | None], None]) -> None:
    """Drive `positions` in one vector env (cfg.batch rows; CARLA: one), calling on_done(position, record,
    metric_info) as each route ends. Raises whatever the env or the agent raises (the caller isolates it)."""
    import numpy as np
    import torch

    size = 1 if cfg.backend == "carla" else min(cfg.batch or len(positions), len(positions))
    env = _env(cfg, agent, positions, size, worker)
    try:
        queue = _RouteQueue(positions, positions[0])
        env.batch.routes.draw = queue.draw     # autoreset takes the chunk's next route (see _RouteQueue)
        generator = torch.Generator().manual_seed(cfg.seed)
        rows = queue.take(size)
        obs, _ = env.reset(seed=cfg.seed, options={"route_ids": [queue.filler if p is None else p for p in rows]})
        if hasattr(agent, "reset"):
            agent.reset()
        while any(p is not None for p in rows):
            obs, _, _, _, info = env.step(_act(agent, obs, generator))
            ended = np.asarray(info.get("_record", np.zeros(size, bool)), bool)
            if not ended.any():
                continue
            source = info.get("final_info", info)
            for b in np.flatnonzero(ended).tolist():
                if rows[b] is not None:
                    metric = source.get("metric_info")
                    on_done(rows[b], dict(source["record"][b]), metric[b] if metric is not None else None)
            if not env.batch.started:           # a crashed CARLA server: no autoreset, start the next route
                rows = queue.take(size)
                if all(p is None for p in rows):
                    break
                obs, _ = env.reset(seed=cfg.seed, options={"route_ids": rows})
            else:
                for b, p in zip(np.flatnonzero(ended).tolist(), queue.drawn):
                    rows[b] = p
            if hasattr(agent, "reset"):
                agent.reset(ended)
    finally:
        env.close()


# --- results on disk --------------------------------------------------------------------------------------

def write_route_result(out: Path, entry: RouteEntry, record: dict, metric_info: dict | None,
                       sensors: Sequence[str] = ()) -> None:
    """metric_info.json (if any), then the route's checkpoint JSON (its presence marks the route done)."""
    from envs.bench2drive.record import checkpoint_json, write_json_atomic

    record = {**record, "index": entry.position}
    if metric_info is not None and record.get("save_name"):
        write_json_atomic(out / METRICS_DIR / record["save_name"] / "metric_info.json", metric_info)
    write_json_atomic(result_path(out, entry.route_id), checkpoint_json([record], (1, 1), sensors=sensors))


def crash_record(entry: RouteEntry, cfg: EvalConfig) -> dict:
    """'Failed - Simulation crashed' record of a route whose run raised (built from the route if it builds)."""
    from types import SimpleNamespace

    from envs.bench2drive.record import crashed_record

    scenario = None
    if cfg.routes == "builtin":
        try:
            from scenarios.bench2drive import build_builtin_route

            scenario = build_builtin_route(entry.position)
        except Exception:  # noqa: BLE001 - the route itself may be what crashes; fall back to its XML facts
            scenario = None
    if scenario is None:
        scenario = SimpleNamespace(route_id=entry.route_id, scenario_name=entry.scenario_type or "unknown",
                                   weather_id=None, town=entry.town)
    return crashed_record(scenario, entry.position, CRASH_REASON)


def result_path(out: Path, route_id: str | int) -> Path:
    """results/RouteScenario_<route id>.json"""
    return out / RESULTS_DIR / f"RouteScenario_{route_id}.json"


def _log_crash(out: Path, entries: Sequence[RouteEntry], text: str) -> None:
    with open(out / "crashes.log", "a", encoding="utf-8") as log:
        log.write(f"--- routes {[e.route_id for e in entries]} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n{text}\n")


def run_chunk(cfg: EvalConfig, agent, entries: Sequence[RouteEntry], worker: int,
              report: Callable[[RouteEntry, dict], None]) -> None:
    """Run `entries` and write their results; if the batched run raises, the routes it left unfinished run
    again one by one, and a route that raises alone gets a crashed record (counts 0)."""
    out = Path(cfg.out)
    by_position = {e.position: e for e in entries}
    finished: set[int] = set()
    sensors = sorted(getattr(agent, "inputs", ()))

    def done(position: int, record: dict, metric_info: dict | None) -> None:
        write_route_result(out, by_position[position], record, metric_info, sensors)
        finished.add(position)
        report(by_position[position], record)

    try:
        run_routes(cfg, agent, [e.position for e in entries], worker, done)
    except Exception:  # noqa: BLE001 - evaluation loops isolate failures per route (style rule 19)
        _log_crash(out, entries, traceback.format_exc())
        left = [e for e in entries if e.position not in finished]
        if len(entries) > 1:
            for entry in left:
                run_chunk(cfg, agent, [entry], worker, report)
            return
        for entry in left:
            record = crash_record(entry, cfg)
            write_route_result(out, entry, record, None, sensors)
            report(entry, record)


def _worker(cfg: EvalConfig, worker: int, entries: list[RouteEntry], messages) -> None:
    """Worker process: its own agent and vector env over `entries`; progress goes to `messages`."""
    try:
        import torch

        torch.set_num_threads(cfg.threads)
        agent = _agent(cfg)
    except Exception:  # noqa: BLE001 - reported to the parent, which stops the evaluation
        messages.put(("fatal", worker, None, traceback.format_exc()))
        return
    run_chunk(cfg, agent, entries, worker,
              lambda entry, record: messages.put(("route", worker, entry.position, record["status"])))
    messages.put(("end", worker, None, None))


# --- the whole evaluation ---------------------------------------------------------------------------------

def _chunks(entries: Sequence[RouteEntry], count: int) -> list[list[RouteEntry]]:
    """Contiguous chunks, as Bench2Drive's split_xml (sizes differ by at most one)."""
    size, extra = divmod(len(entries), count)
    chunks, start = [], 0
    for i in range(count):
        stop = start + size + (i < extra)
        chunks.append(list(entries[start:stop]))
        start = stop
    return [c for c in chunks if c]


def _progress(cfg: EvalConfig, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"bench2drive {cfg.agent}", unit="route", disable=not cfg.progress)


def _run_all(cfg: EvalConfig, todo: list[RouteEntry]) -> None:
    """Run the routes to do: in this process (workers=0) or in spawned workers, with a progress bar."""
    bar = _progress(cfg, len(todo))
    try:
        if cfg.workers == 0:
            import torch

            torch.set_num_threads(cfg.threads)
            run_chunk(cfg, _agent(cfg), todo, 0, lambda entry, record: bar.update(1))
            return
        context = mp.get_context("spawn")
        messages = context.Queue()
        chunks = _chunks(todo, cfg.workers)
        processes = [context.Process(target=_worker, args=(cfg, i, chunk, messages), daemon=True)
                     for i, chunk in enumerate(chunks)]
        for process in processes:
            process.start()
        reported: set[int] = set()
        ended: set[int] = set()
        fatal = None
        while len(ended) < len(processes):
            try:
                kind, worker, position, text = messages.get(timeout=1.0)
            except queue.Empty:     # check for workers that died without a word
                dead = [i for i, p in enumerate(processes) if not p.is_alive() and i not in ended]
                if dead and messages.empty():
                    _dead_workers(cfg, [chunks[i] for i in dead], reported)
                    ended.update(dead)
                continue
            if kind == "route":
                reported.add(position)
                bar.update(1)
            elif kind == "fatal":
                fatal = fatal or text
                ended.add(worker)
            else:
                ended.add(worker)
        for process in processes:
            process.join()
        if fatal is not None:
            raise RuntimeError(f"a worker could not start the agent:\n{fatal}")
    finally:
        bar.close()


def _dead_workers(cfg: EvalConfig, chunks: list[list[RouteEntry]], reported: set[int]) -> None:
    """A worker process that died (killed, out of memory) leaves its unreported routes crashed (they count 0
    and a resume runs them again)."""
    out = Path(cfg.out)
    for chunk in chunks:
        for entry in chunk:
            if entry.position not in reported and finished_record(result_path(out, entry.route_id)) is None:
                write_route_result(out, entry, crash_record(entry, cfg), None)


def summarize(cfg: EvalConfig, entries: Sequence[RouteEntry], **extra) -> dict:
    """Merge what is under `out` exactly as `tools.bench2drive_merge` does and save the figures."""
    from envs.bench2drive.record import write_json_atomic
    from envs.metrics.bench2drive_results import OFFICIAL_ROUTE_COUNT, IssueLog, ability_json, merge_results, merged_json
    from tools.bench2drive_merge import read_metric_infos, read_results

    out = Path(cfg.out)
    log = IssueLog()
    records, origins = read_results(out / RESULTS_DIR, log)
    report = merge_results(records, entries, read_metric_infos(out / METRICS_DIR, records), None,
                           origins=origins, warnings=log.messages)
    figures = report.to_json()
    statuses: dict[str, int] = {}
    for record in report.records:
        statuses[record.status] = statuses.get(record.status, 0) + 1
    evaluated = max(report.eval_num, 1)
    summary = {"agent": cfg.checkpoint or cfg.agent, "backend": cfg.backend, "routes": len(entries), **figures,
               "mean_over_evaluated": {"driving_score": sum(r.score_composed for r in report.records) / evaluated,
                                       "success_rate": report.success_rate * OFFICIAL_ROUTE_COUNT / evaluated},
               "statuses": statuses, **extra, "table": results_table(cfg.checkpoint or cfg.agent, figures)}
    write_json_atomic(out / SUMMARY_JSON, summary)
    write_json_atomic(out / "merged.json", merged_json(report))
    write_json_atomic(out / "merged_ability.json", ability_json(report.abilities))
    return summary


def results_table(agent: str, figures: dict) -> str:
    """Markdown rows: DS, SR, Efficiency, Comfortness and the five abilities (%)."""
    from envs.metrics.bench2drive_results import ABILITY_NAMES

    def cell(value, scale=100.0):
        return "n/a" if value is None else f"{value * scale:.2f}"

    abilities = figures["abilities"]
    head = ["agent", "routes", "DS", "SR (%)", "Efficiency", "Comfortness (%)", *ABILITY_NAMES, "mean ability"]
    row = [agent, str(figures["eval_num"]), cell(figures["driving_score"], 1.0), cell(figures["success_rate"]),
           cell(figures["efficiency"], 1.0), cell(figures["comfortness"]), *(cell(abilities[n]) for n in ABILITY_NAMES),
           cell(abilities["mean"])]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(row) + " |"])


def evaluate(cfg: EvalConfig) -> dict:
    """Run (or resume) the evaluation of `cfg` and return the merged summary (also saved under cfg.out)."""
    out = Path(cfg.out)
    (out / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
    (out / METRICS_DIR).mkdir(parents=True, exist_ok=True)
    everything = route_set(cfg)
    entries = [everything[i] for i in parse_route_ids(cfg.route_ids, len(everything))]
    if cfg.checkpoint is None:
        from agents import AGENTS

        if cfg.agent not in AGENTS:
            raise ValueError(f"agent={cfg.agent!r}: unknown (valid: {', '.join(sorted(AGENTS))})")
    elif not Path(cfg.checkpoint).is_file():
        raise ValueError(f"checkpoint={cfg.checkpoint!r}: no such file")
    start = time.time()
    write_routes_xml(cfg, entries, out / ROUTES_XML)
    todo = routes_to_run(out, entries)
    from envs.bench2drive.record import write_json_atomic

    write_json_atomic(out / "config.json", asdict(cfg))
    if todo:
        _run_all(cfg, todo)
    return summarize(cfg, entries, ran=[e.route_id for e in todo], wall_time_s=round(time.time() - start, 3))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg = parse_args(sys.argv[1:] if argv is None else argv)
        summary = evaluate(cfg)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary["table"])
    print(json.dumps({k: v for k, v in summary.items() if k != "table"}, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
