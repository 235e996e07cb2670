"""deploy/: the Kubernetes manifests agree with each other, with the Containerfile, with the
scenario they run, and with the flags and environment variables that orchlab and
orchlab-mock document in their --help. Each check is a function returning the problems it
found, so that a deliberately broken copy can show that the check notices."""

import copy
import functools
import json
import os
import pathlib
import re
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CONTAINERFILE = DEPLOY / "Containerfile"
DOCS = ROOT / "docs" / "distributed.md"
BUILD_TREES = ("build/release", "build/asan", "build/tsan")
PLACEHOLDER = "@START_AT@"
# Environment variables the sharding CLI reads (besides --shard / --start-at).
SHARD_ENV = {"JOB_COMPLETION_INDEX", "ORCHLAB_SHARD_COUNT", "ORCHLAB_START_AT"}
# The three programs the image carries, with the CMakeLists.txt that defines each.
TARGETS = {"orchlab": "harness", "orchlab-mock": "mock_services", "orchlab-micro": "harness/micro"}
# program -> (its path inside a build tree, the arguments that print its help, its source)
PROGRAMS = {
    "orchlab": ("harness/orchlab", ["run", "--help"], "harness/src/cli.cpp"),
    "orchlab-mock": ("mock_services/orchlab-mock", ["--help"], "mock_services/src/main.cpp"),
}


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------

def load_documents(folder=K8S):
    """[(file name, document)] of every YAML file in folder but kustomization.yaml."""
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as f:
            docs += [(path.name, d) for d in yaml.safe_load_all(f) if d is not None]
    return docs


@pytest.fixture(scope="module")
def docs():
    """The manifests as parsed YAML (copy before editing)."""
    return [d for _, d in load_documents()]


def find(docs, kind, name=None):
    """The one document of that kind (and name)."""
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or d.get("metadata", {}).get("name") == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def job(docs, command):
    """The Job whose orchlab container runs `orchlab <command>`."""
    jobs = [d for d in docs if d.get("kind") == "Job"
            and any(argv(c)[:2] == ["orchlab", command] for c in containers(d))]
    assert len(jobs) == 1, f"expected one Job running orchlab {command}, found {len(jobs)}"
    return jobs[0]


def pod_spec(doc):
    """The pod spec of a Pod, or of a Deployment's or Job's template."""
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def containers(doc):
    """Every container (init containers too) of a workload; none for other kinds."""
    if doc.get("kind") not in ("Pod", "Deployment", "Job"):
        return []
    spec = pod_spec(doc)
    return spec.get("initContainers", []) + spec.get("containers", [])


def argv(container):
    """command + args of a container, as strings."""
    return [str(a) for a in container.get("command", []) + container.get("args", [])]


def env(container):
    """{name: env entry} of a container."""
    return {e["name"]: e for e in container.get("env", [])}


def option(args, *names):
    """The value after the first of names in args (or given as --name=value), else None."""
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a[len(n) + 1:]
    return None


def mount_of(doc, container, path):
    """The volume (as in the pod spec) mounted over path in the container, else None."""
    for m in container.get("volumeMounts", []):
        mount = m["mountPath"].rstrip("/")
        if path == mount or path.startswith(mount + "/"):
            volumes = {v["name"]: v for v in pod_spec(doc).get("volumes", [])}
            return m, volumes.get(m["name"])
    return None


# ---------------------------------------------------------------------------------------
# Help texts: the binary's --help when one is built, else the text of usage() in the source
# ---------------------------------------------------------------------------------------

def c_function_body(source, name):
    """The body (between its braces) of the C++ function `name`, else None."""
    m = re.search(r"\b" + re.escape(name) + r"\s*\([^)]*\)\s*(?:const\s*)?\{", source)
    if not m:
        return None
    depth, i, quote = 1, m.end(), None
    while i < len(source) and depth:
        c = source[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif source.startswith("//", i):
            i = source.find("\n", i)
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1
    return source[m.end():i - 1]


def c_string_literals(code):
    """The C string literals of code, concatenated, escapes decoded."""
    parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', code)
    escapes = {"n": "\n", "t": "\t"}
    return "".join(re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), p)
                   for p in parts)


def usage_from_source(path):
    """The help text a program's source holds: its usage() function, else its kUsage."""
    source = pathlib.Path(path).read_text(encoding="utf-8")
    body = c_function_body(source, "usage")
    if body is None:
        m = re.search(r"\bkUsage\b[^=;]*=(.*?);", source, re.S)
        body = m.group(1) if m else ""
    return c_string_literals(body)


@functools.lru_cache(maxsize=None)
def help_text(program):
    """(help text, where it came from): the first build tree's binary that answers --help,
    else the source's usage text."""
    binary, args, source = PROGRAMS[program]
    for tree in BUILD_TREES:
        path = ROOT / tree / binary
        if not os.access(path, os.X_OK):
            continue
        try:
            run = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=30,
                                 env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
        except subprocess.TimeoutExpired:
            continue
        if run.returncode == 0 and run.stdout.strip():
            return run.stdout, f"`{tree}/{binary} {' '.join(args)}`"
    return usage_from_source(ROOT / source), f"usage text of {source}"


def command_section(help, command):
    """The part of orchlab's help about one command: the blocks under headers naming it
    ("Options of run:") and every line naming it as a word, with its continuation lines.
    Empty when the help does not describe the command."""
    word = re.compile(r"(?<![\w-])" + re.escape(command) + r"(?![\w-])")
    header = re.compile(r"^\s{0,2}[A-Za-z].*:\s*$")  # "  Options of run:", not an option
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    lines, out, i = help.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not word.search(line):
            continue
        out.append(line)
        in_block = bool(header.match(line))
        while i < len(lines) and lines[i].strip() and not header.match(lines[i]) \
                and (in_block or indent(lines[i]) > indent(line)):
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def documented(flag, text):
    """True when text names the flag as a word (-o does not match --out)."""
    return re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text) is not None


def flags_of(args):
    """The -x / --xxx flags in args (a --flag=value counts as --flag; values are skipped)."""
    out = []
    for a in args:
        m = re.match(r"^(--?[A-Za-z][\w-]*)(=|$)", a)
        if m:
            out.append(m.group(1))
    return out


# ---------------------------------------------------------------------------------------
# The checks: each returns a list of problems
# ---------------------------------------------------------------------------------------

def check_objects(named_docs):
    """Every document is one object with apiVersion, kind and metadata.name, names unique."""
    problems, seen = [], set()
    for file, d in named_docs:
        if not isinstance(d, dict):
            problems.append(f"{file}: a document that is not an object")
            continue
        for key in ("apiVersion", "kind"):
            if not d.get(key):
                problems.append(f"{file}: a document without {key}")
        name = (d.get("metadata") or {}).get("name")
        if not name:
            problems.append(f"{file}: a {d.get('kind')} without metadata.name")
        if d.get("kind", "").endswith("List"):
            problems.append(f"{file}: {d['kind']}: one object per document")
        if (d.get("kind"), name) in seen:
            problems.append(f"{file}: {d.get('kind')} {name} defined twice")
        seen.add((d.get("kind"), name))
    return problems


def shard_count(job_doc):
    """(N from the manifest, problems): ORCHLAB_SHARD_COUNT, or the N of --shard I/N."""
    problems, counts = [], []
    for c in containers(job_doc):
        e = env(c).get("ORCHLAB_SHARD_COUNT")
        if e is not None:
            counts.append(("ORCHLAB_SHARD_COUNT", e.get("value")))
        shard = option(argv(c), "--shard")
        if shard is not None:
            counts.append(("--shard", shard.rpartition("/")[2]))
    if not counts:
        return None, ["the harness Job sets neither ORCHLAB_SHARD_COUNT nor --shard I/N"]
    values = set()
    for where, v in counts:
        try:
            values.add(int(v))
        except (TypeError, ValueError):
            problems.append(f"{where} is not an integer: {v!r}")
    if len(values) > 1:
        problems.append(f"ORCHLAB_SHARD_COUNT and --shard disagree: {sorted(values)}")
    return (values.pop() if len(values) == 1 else None), problems


def check_pod_security(doc):
    """Non-root pods (the user the image runs as), no privilege escalation."""
    spec, problems = pod_spec(doc), []
    sc = spec.get("securityContext", {})
    name = f"{doc['kind']} {doc['metadata']['name']}"
    if sc.get("runAsNonRoot") is not True:
        problems.append(f"{name}: securityContext.runAsNonRoot is not true")
    if sc.get("runAsUser") in (None, 0):
        problems.append(f"{name}: no non-zero securityContext.runAsUser")
    for c in containers(doc):
        if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation is not false")
    return problems


def check_harness_job(job_doc):
    """Indexed, completions == parallelism == shard count, no retries, an explicit CPU, the
    start placeholder, a report per shard, shards spread over nodes."""
    spec, problems = job_doc["spec"], []
    n, count_problems = shard_count(job_doc)
    problems += count_problems
    if spec.get("completionMode") != "Indexed":
        problems.append(f"completionMode is {spec.get('completionMode')!r}, not Indexed")
    if n is not None and not spec.get("completions") == spec.get("parallelism") == n:
        problems.append(f"completions ({spec.get('completions')}) and parallelism "
                        f"({spec.get('parallelism')}) must equal the shard count ({n})")
    if spec.get("backoffLimit") != 0:
        problems.append(f"backoffLimit is {spec.get('backoffLimit')!r}, not 0: a retried shard "
                        "starts after the start instant")
    if pod_spec(job_doc).get("restartPolicy") != "Never":
        problems.append("restartPolicy is not Never")
    if pod_spec(job_doc).get("enableServiceLinks") is not False:
        problems.append("enableServiceLinks is not false: the Service orchlab-mock would put "
                        "ORCHLAB_MOCK_* variables into orchlab's environment")
    problems += check_pod_security(job_doc)
    for c in containers(job_doc):
        args, variables = argv(c), env(c)
        start = variables.get("ORCHLAB_START_AT", {}).get("value") or option(args, "--start-at")
        if start != PLACEHOLDER:
            problems.append(f"the start instant is {start!r}, not the placeholder {PLACEHOLDER} "
                            "that docs/distributed.md replaces")
        resources = c.get("resources", {})
        cpu = (resources.get("requests", {}).get("cpu"), resources.get("limits", {}).get("cpu"))
        if None in cpu or cpu[0] != cpu[1]:
            problems.append(f"{c['name']}: CPU requests and limits must be set and equal, got {cpu}")
        for ref in re.findall(r"\$\((\w+)\)", " ".join(args)):
            if ref not in variables:
                problems.append(f"{c['name']}: $({ref}) in the arguments is not declared in env "
                                "(the kubelet expands only declared variables)")
        out = option(args, "-o", "--out")
        if not out or "$(JOB_COMPLETION_INDEX)" not in out:
            problems.append(f"--out {out!r}: every shard needs its own file, named by "
                            "$(JOB_COMPLETION_INDEX)")
    labels = job_doc["spec"]["template"]["metadata"]["labels"]
    terms = (pod_spec(job_doc).get("affinity", {}).get("podAntiAffinity", {})
             .get("preferredDuringSchedulingIgnoredDuringExecution", []))
    if not any(t["podAffinityTerm"].get("topologyKey") == "kubernetes.io/hostname"
               and t["podAffinityTerm"].get("labelSelector", {}).get("matchLabels") == labels
               for t in terms):
        problems.append("no preferred pod anti-affinity on kubernetes.io/hostname that selects "
                        "the shards' own labels")
    return problems


def check_mock(configmap, deployment, service):
    """The ConfigMap's config parses and binds 0.0.0.0 (so --allow-remote), and its ports are
    the Deployment's containerPorts and the Service's ports; the probe asks /__stats."""
    problems = []
    (c,) = containers(deployment)
    args = argv(c)
    config_path = option(args, "-c", "--config")
    found = mount_of(deployment, c, config_path or "")
    if not found or not found[1] or found[1].get("configMap", {}).get("name") != \
            configmap["metadata"]["name"]:
        return [f"--config {config_path!r} is not inside the mounted ConfigMap "
                f"{configmap['metadata']['name']}"]
    mount, _ = found
    key = mount.get("subPath") or config_path[len(mount["mountPath"].rstrip("/")) + 1:]
    try:
        config = json.loads(configmap["data"][key])
    except (KeyError, ValueError) as e:
        return [f"the ConfigMap's {key!r} is not a JSON mock config: {e!r}"]
    if config.get("bind") != "0.0.0.0":
        problems.append(f"the mock binds {config.get('bind')!r}, not 0.0.0.0: other pods cannot "
                        "reach it")
    if config.get("bind") not in (None, "127.0.0.1", "::1") and "--allow-remote" not in args:
        problems.append("the mock binds outside loopback without --allow-remote: it exits 2")
    config_ports = sorted(s.get("port") for s in config.get("services", []))
    if len(config_ports) != 3 or 0 in config_ports:
        problems.append(f"the mock config needs three services on fixed ports, has {config_ports}")
    container_ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if sorted(container_ports.values()) != config_ports:
        problems.append(f"containerPorts {sorted(container_ports.values())} != the config's "
                        f"ports {config_ports}")
    targets = []
    for p in service["spec"]["ports"]:
        t = p.get("targetPort", p["port"])
        targets.append(container_ports.get(t, t))
        if p["port"] != container_ports.get(t, t):
            problems.append(f"Service port {p['port']} forwards to {t}, another port")
    if sorted(p["port"] for p in service["spec"]["ports"]) != config_ports:
        problems.append(f"Service ports {sorted(p['port'] for p in service['spec']['ports'])} "
                        f"!= the config's ports {config_ports}")
    if sorted(targets) != config_ports:
        problems.append(f"Service targetPorts {sorted(targets)} != the config's ports "
                        f"{config_ports}")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"].get("selector", {})
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        problems.append(f"the Service's selector {selector} does not select the mock's pods")
    if deployment["spec"].get("replicas", 1) != 1:
        problems.append("the mock must run one replica: /__stats is per process")
    probe = c.get("readinessProbe", {}).get("httpGet", {})
    if probe.get("path") != "/__stats" or container_ports.get(probe.get("port"), probe.get(
            "port")) not in config_ports:
        problems.append(f"the readiness probe {probe} does not ask GET /__stats of a service port")
    if not c.get("resources", {}).get("requests", {}).get("cpu"):
        problems.append("the mock has no CPU request")
    problems += check_pod_security(deployment)
    return problems


def check_service_urls(job_doc, service):
    """--services names the Service and each of its ports once, over http."""
    problems = []
    ports = sorted(p["port"] for p in service["spec"]["ports"])
    name = service["metadata"]["name"]
    for c in containers(job_doc):
        urls = (option(argv(c), "--services") or "").split(",")
        seen = []
        for url in urls:
            u = urlsplit(url)
            if u.scheme != "http" or (u.hostname or "").split(".")[0] != name:
                problems.append(f"--services {url!r} is not http://{name}:PORT")
            seen.append(u.port)
        if sorted(seen, key=str) != sorted(ports, key=str):
            problems.append(f"--services ports {seen} != the Service's ports {ports}")
    return problems


def check_merge_job(merge_doc, harness_doc):
    """The merge reads exactly the N shard reports the harness writes, on the same volume,
    and writes a new file."""
    n, _ = shard_count(harness_doc)
    (h,) = containers(harness_doc)
    (m,) = containers(merge_doc)
    out = option(argv(h), "-o", "--out")
    expected = [out.replace("$(JOB_COMPLETION_INDEX)", str(i)) for i in range(n or 0)]
    args = argv(m)[2:]
    merged = option(args, "-o", "--out")
    inputs = [a for i, a in enumerate(args) if not a.startswith("-")
              and not (i > 0 and args[i - 1] in ("-o", "--out"))]
    problems = []
    if inputs != expected:
        problems.append(f"the merge reads {inputs}, the harness writes {expected}")
    if not merged or merged in expected:
        problems.append(f"the merge writes {merged!r}: not a new file")
    if merge_doc["spec"].get("backoffLimit") != 0:
        problems.append("the merge Job retries (backoffLimit is not 0)")
    for path in [merged or ""] + inputs:
        for doc, c in ((merge_doc, m), (harness_doc, h)):
            if doc is harness_doc and path == merged:
                continue
            found = mount_of(doc, c, path)
            if not found or not (found[1] or {}).get("persistentVolumeClaim"):
                problems.append(f"{doc['metadata']['name']}: {path} is not on a mounted PVC")
    claims = set()
    for d, c in ((merge_doc, m), (harness_doc, h)):
        volume = (mount_of(d, c, out or "") or (None, None))[1] or {}
        claims.add(volume.get("persistentVolumeClaim", {}).get("claimName"))
    if len(claims) != 1:
        problems.append(f"the Jobs mount different claims at the results: {claims}")
    problems += check_pod_security(merge_doc)
    return problems


def check_container_flags(container, helps):
    """Every flag of an orchlab / orchlab-mock container is in that program's help; for
    orchlab, in the part about its command (run, merge)."""
    args = argv(container)
    program = os.path.basename(args[0]) if args else ""
    if program not in helps:
        return []
    text, where = helps[program]
    rest = args[1:]
    if program == "orchlab":
        command, rest = (rest[0], rest[1:]) if rest else ("", [])
        text = command_section(text, command)
        if not text:
            return [f"orchlab {command}: not described in orchlab's help ({where})"]
    return [f"{program}: {flag} is not in its help ({where})"
            for flag in flags_of(rest) if not documented(flag, text)]


def check_env_documented(container, helps):
    """Every variable an orchlab container sets is named in orchlab's help."""
    args = argv(container)
    if not args or os.path.basename(args[0]) != "orchlab":
        return []
    text, where = helps["orchlab"]
    return [f"{name} is set for orchlab but not named in its help ({where})"
            for name in env(container) if not documented(name, text)]


def containerfile_instructions(text):
    """[(INSTRUCTION, rest)] with comments dropped and continuation lines joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def cmake_executables():
    """{executable: directory of the CMakeLists.txt that adds it} for the image's programs."""
    found = {}
    for directory in set(TARGETS.values()):
        text = (ROOT / directory / "CMakeLists.txt").read_text(encoding="utf-8")
        for name in re.findall(r"add_executable\(\s*([\w-]+)", text):
            found[name] = directory
    return found


def check_containerfile(text, executables):
    """Debian 12, the project's install-deps.sh, the three programs built and copied, the
    scenarios where orchlab looks, and a non-root numeric USER."""
    problems = []
    instructions = containerfile_instructions(text)
    stages, aliases = [], set()
    for word, rest in instructions:
        if word == "FROM":
            tokens = [t for t in rest.split() if not t.startswith("--")]
            image = tokens[0] if tokens else ""
            if image not in aliases and not re.fullmatch(
                    r"(docker\.io/(library/)?)?debian:(12|bookworm)([.-][\w.-]*)?(@sha256:\w+)?",
                    image):
                problems.append(f"FROM {image}: not Debian 12 (bookworm)")
            if len(tokens) >= 3 and tokens[1].upper() == "AS":
                aliases.add(tokens[2])
            stages.append([])
        elif stages:
            stages[-1].append((word, rest))
    if not stages:
        return ["no FROM"]
    runs = [rest for stage in stages for word, rest in stage if word == "RUN"]
    if not any(re.search(r"(^|[\s/])scripts/install-deps\.sh\b", r) for r in runs):
        problems.append("no RUN of scripts/install-deps.sh")
    build = next((r for r in runs if "cmake --build" in r), "")
    built = set(re.findall(r"--target((?:\s+[\w-]+)+)", build)[0].split()) if "--target" in build \
        else set()
    final = stages[-1]
    copies = [rest.split() for word, rest in final if word in ("COPY", "ADD")]
    for name in TARGETS:
        if name not in executables:
            problems.append(f"{name}: no add_executable in {TARGETS[name]}/CMakeLists.txt")
            continue
        if name not in built:
            problems.append(f"{name}: not among the targets of `cmake --build`")
        source = f"build/release/{executables[name]}/{name}"
        if not any(c[-1].rstrip("/") in ("/usr/local/bin", f"/usr/local/bin/{name}")
                   and any(s.endswith(source) for s in c[:-1] if not s.startswith("--"))
                   for c in copies):
            problems.append(f"{name}: no COPY of .../{source} into /usr/local/bin")
    workdirs = [rest for word, rest in final if word == "WORKDIR"]
    scenarios = os.path.join(workdirs[-1], "scenarios") if workdirs else "scenarios"
    if not any(c[-1].rstrip("/") in (scenarios, "scenarios", "./scenarios")
               and any(s.rstrip("/").endswith("scenarios") for s in c[:-1]) for c in copies):
        problems.append(f"scenarios/ is not copied to {scenarios} (the final WORKDIR's scenarios)")
    users = [rest.split(":")[0] for word, rest in final if word == "USER"]
    if not users:
        problems.append("no USER in the final stage: the image runs as root")
    elif users[-1] in ("root", "0"):
        problems.append(f"USER {users[-1]}: root")
    elif not users[-1].isdigit():
        problems.append(f"USER {users[-1]}: not numeric, runAsNonRoot cannot verify it")
    return problems


# ---------------------------------------------------------------------------------------
# The manifests as shipped
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def helps():
    return {program: help_text(program) for program in PROGRAMS}


def test_every_document_is_one_named_object():
    named = load_documents()
    assert named, "no manifests in deploy/k8s"
    assert check_objects(named) == []


def test_kustomization_lists_the_long_lived_objects_only():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for file in kustomization["resources"]:
        assert (K8S / file).is_file(), file
        text = (K8S / file).read_text(encoding="utf-8")
        kinds = {d["kind"] for d in yaml.safe_load_all(text) if d}
        assert "Job" not in kinds and PLACEHOLDER not in text, file


def test_harness_job(docs):
    assert check_harness_job(job(docs, "run")) == []


def test_harness_job_sets_the_sharding_variables(docs):
    (c,) = containers(job(docs, "run"))
    assert SHARD_ENV <= set(env(c))
    assert option(argv(c), "--shard") is None, "the Job uses the environment form, not --shard"


def test_mock_configmap_deployment_and_service(docs):
    assert check_mock(find(docs, "ConfigMap"), find(docs, "Deployment"), find(docs, "Service")) == []


def test_harness_reaches_the_service_on_its_ports(docs):
    assert check_service_urls(job(docs, "run"), find(docs, "Service")) == []


def test_merge_job_reads_every_shard(docs):
    assert check_merge_job(job(docs, "merge"), job(docs, "run")) == []


def test_every_claim_is_a_read_write_many_pvc(docs):
    claims = {v["persistentVolumeClaim"]["claimName"] for d in docs if containers(d)
              for v in pod_spec(d).get("volumes", []) if "persistentVolumeClaim" in v}
    assert claims, "no workload mounts a PersistentVolumeClaim"
    for name in claims:
        pvc = find(docs, "PersistentVolumeClaim", name)
        assert "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_mock_config_is_the_scenarios_services(docs):
    """--services URL makes orchlab ignore the scenario's services: the mock's config must be
    the scenario's, ports aside."""
    scenario = option(argv(containers(job(docs, "run"))[0]), "-s", "--scenario")
    with open(ROOT / "scenarios" / f"{scenario}.json", encoding="utf-8") as f:
        wanted = json.load(f)["services"]
    config = json.loads(find(docs, "ConfigMap")["data"]["mock.json"])

    def without_ports(services):
        return [{k: v for k, v in s.items() if k != "port"} for s in services]

    assert without_ports(config["services"]) == without_ports(wanted)


def test_one_image_pulled_if_not_present(docs):
    all_containers = [c for d in docs for c in containers(d)]
    assert len({c["image"] for c in all_containers}) == 1
    assert {c.get("imagePullPolicy") for c in all_containers} == {"IfNotPresent"}


def test_pods_run_as_the_images_user(docs):
    users = [rest for word, rest in
             containerfile_instructions(CONTAINERFILE.read_text(encoding="utf-8")) if word == "USER"]
    uid = int(users[-1].split(":")[0])
    for d in docs:
        if containers(d):
            assert check_pod_security(d) == []
            assert pod_spec(d)["securityContext"]["runAsUser"] == uid, d["metadata"]["name"]


ALL_CONTAINERS = [(d, c) for _, d in load_documents() for c in containers(d)]


@pytest.mark.parametrize("doc, container", ALL_CONTAINERS,
                         ids=[f"{d['metadata']['name']}/{c['name']}" for d, c in ALL_CONTAINERS])
def test_flags_are_in_the_programs_help(doc, container, helps):
    assert check_container_flags(container, helps) == []


@pytest.mark.parametrize("doc, container", ALL_CONTAINERS,
                         ids=[f"{d['metadata']['name']}/{c['name']}" for d, c in ALL_CONTAINERS])
def test_environment_is_in_orchlabs_help(doc, container, helps):
    assert check_env_documented(container, helps) == []


def test_containerfile():
    assert check_containerfile(CONTAINERFILE.read_text(encoding="utf-8"), cmake_executables()) == []


def test_ignore_file_keeps_build_trees_out():
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "build" in lines and "results/*" in lines


def test_docs_commands_name_existing_files():
    text = DOCS.read_text(encoding="utf-8")
    assert f's/{PLACEHOLDER}/$START_AT/' in text
    assert "podman build -f deploy/Containerfile -t orchlab ." in text
    for path in set(re.findall(r"deploy/k8s/[\w.-]+\.yaml", text)):
        assert (ROOT / path).is_file(), path


# ---------------------------------------------------------------------------------------
# The checks notice broken copies
# ---------------------------------------------------------------------------------------

def test_help_from_source_is_the_usage_text():
    orchlab = usage_from_source(ROOT / PROGRAMS["orchlab"][2])
    mock = usage_from_source(ROOT / PROGRAMS["orchlab-mock"][2])
    assert orchlab.startswith("Usage: orchlab") and documented("--scenario", orchlab)
    assert mock.startswith("Usage: orchlab-mock") and documented("--allow-remote", mock)
    assert command_section(orchlab, "run") and not command_section(orchlab, "no-such-command")
    assert not documented("-o", "--out <F>") and documented("-o", "-o, --out <F>")


def test_an_unknown_flag_is_reported(docs, helps):
    c = copy.deepcopy(containers(job(docs, "run"))[0])
    c["args"].append("--no-such-flag")
    assert any("--no-such-flag" in p for p in check_container_flags(c, helps))
    c = copy.deepcopy(containers(find(docs, "Deployment"))[0])
    c["args"].append("--no-such-flag=1")
    assert any("--no-such-flag" in p for p in check_container_flags(c, helps))


def test_an_undocumented_command_is_reported(helps):
    c = {"name": "x", "command": ["orchlab"], "args": ["frobnicate", "-o", "x.json"]}
    assert any("orchlab frobnicate" in p for p in check_container_flags(c, helps))


def test_an_undocumented_variable_is_reported(docs, helps):
    c = copy.deepcopy(containers(job(docs, "run"))[0])
    c["env"].append({"name": "ORCHLAB_SHARDS", "value": "2"})
    assert any("ORCHLAB_SHARDS" in p for p in check_env_documented(c, helps))


@pytest.mark.parametrize("edit, words", [
    (lambda j: j["spec"].update(completions=3), "completions (3)"),
    (lambda j: j["spec"].update(parallelism=1), "parallelism (1)"),
    (lambda j: j["spec"].update(backoffLimit=6), "backoffLimit"),
    (lambda j: j["spec"].pop("completionMode"), "not Indexed"),
    (lambda j: pod_spec(j)["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
    (lambda j: containers(j)[0]["env"].pop(), "placeholder"),
    (lambda j: containers(j)[0]["resources"]["limits"].pop("cpu"), "CPU requests and limits"),
    (lambda j: containers(j)[0]["args"].extend(["--shard", "$(JOB_COMPLETION_INDEX)/3"]),
     "disagree"),
    (lambda j: containers(j)[0]["args"].append("$(NOT_DECLARED)"), "$(NOT_DECLARED)"),
    (lambda j: pod_spec(j).pop("affinity"), "anti-affinity"),
])
def test_a_broken_harness_job_is_reported(docs, edit, words):
    broken = copy.deepcopy(job(docs, "run"))
    edit(broken)
    assert any(words in p for p in check_harness_job(broken)), check_harness_job(broken)


def test_a_port_mismatch_is_reported(docs):
    service = copy.deepcopy(find(docs, "Service"))
    service["spec"]["ports"][-1]["port"] = 9999
    problems = check_mock(find(docs, "ConfigMap"), find(docs, "Deployment"), service)
    assert any("Service port" in p for p in problems), problems
    assert check_service_urls(job(docs, "run"), service)


def test_a_loopback_or_unguarded_mock_is_reported(docs):
    deployment = copy.deepcopy(find(docs, "Deployment"))
    containers(deployment)[0]["args"].remove("--allow-remote")
    problems = check_mock(find(docs, "ConfigMap"), deployment, find(docs, "Service"))
    assert any("--allow-remote" in p for p in problems), problems
    configmap = copy.deepcopy(find(docs, "ConfigMap"))
    configmap["data"]["mock.json"] = configmap["data"]["mock.json"].replace("0.0.0.0", "127.0.0.1")
    problems = check_mock(configmap, find(docs, "Deployment"), find(docs, "Service"))
    assert any("not 0.0.0.0" in p for p in problems), problems


def test_a_merge_missing_a_shard_is_reported(docs):
    merge = copy.deepcopy(job(docs, "merge"))
    containers(merge)[0]["args"].pop()
    assert any("the merge reads" in p for p in check_merge_job(merge, job(docs, "run")))


def test_a_wrong_service_url_is_reported(docs):
    harness = copy.deepcopy(job(docs, "run"))
    args = containers(harness)[0]["args"]
    i = args.index("--services") + 1
    args[i] = args[i].replace("orchlab-mock:8081", "localhost:8081")
    assert any("localhost" in p for p in check_service_urls(harness, find(docs, "Service")))


def test_a_broken_document_is_reported():
    problems = check_objects([("a.yaml", {"kind": "Job", "metadata": {}}), ("b.yaml", ["x"])])
    assert any("apiVersion" in p for p in problems)
    assert any("metadata.name" in p for p in problems)
    assert any("not an object" in p for p in problems)


@pytest.mark.parametrize("old, new, words", [
    ("FROM debian:12 AS build", "FROM ubuntu:24.04 AS build", "not Debian 12"),
    ("USER 10001:10001", "USER root", "root"),
    ("USER 10001:10001", "USER orchlab", "not numeric"),
    ("USER 10001:10001\n", "", "no USER"),
    ("RUN sh scripts/install-deps.sh", "RUN apt-get install -y g++", "install-deps.sh"),
    ("harness/micro/orchlab-micro /usr/local/bin/orchlab-micro", "harness/micro/orchlab-micro /opt/",
     "orchlab-micro: no COPY"),
    ("--target orchlab orchlab-mock orchlab-micro", "--target orchlab orchlab-mock",
     "orchlab-micro: not among the targets"),
    ("COPY --from=build /opt/orchlab/scenarios /opt/orchlab/scenarios", "", "scenarios/"),
])
def test_a_broken_containerfile_is_reported(old, new, words):
    text = CONTAINERFILE.read_text(encoding="utf-8")
    assert old in text
    problems = check_containerfile(text.replace(old, new), cmake_executables())
    assert any(words in p for p in problems), problems


def test_a_renamed_target_is_reported():
    executables = dict(cmake_executables())
    executables["orchlab-mock2"] = executables.pop("orchlab-mock")
    problems = check_containerfile(CONTAINERFILE.read_text(encoding="utf-8"), executables)
    assert any("orchlab-mock: no add_executable" in p for p in problems), problems
