#!/usr/bin/env python3
"""The bare-ccm container image, specified in one place.

* The image NAME is REPOSITORY (below) and the workspace version of Cargo.toml as the tag.
* The image CONFIGURATION (entrypoint, command, user, environment, working directory,
  exposed port, labels, os/architecture) is the final stage of the Dockerfile. Docker
  builds that stage; scripts/build-image.sh, which builds the same image without Docker,
  reads the configuration from it through this script and applies it with umoci; and CI
  compares the configuration inside the built archive with it (check-config). So the two
  ways of building cannot drift apart: there is nothing to keep in step by hand.

The Dockerfile is read with BuildKit's semantics for a `FROM scratch` stage: the image
starts with WorkingDir "/" and Env PATH=<the default Linux PATH> (moby/buildkit,
frontend/dockerfile/dockerfile2llb, emptyImage()), then each instruction changes it. Only
the instructions the final stage uses are understood; any other instruction, a shell-form
ENTRYPOINT or CMD, or a `$` substitution is refused, so that a Dockerfile change this
script does not model fails loudly instead of producing a different image.

Usage:
  image-spec.py name                    the image reference, e.g. ghcr.io/bare-ccm/bare-ccm:0.1.0
  image-spec.py version                 the tag alone (the Cargo workspace version)
  image-spec.py config [--arch A]       the expected configuration, as JSON
  image-spec.py umoci-args [--arch A]   `umoci config` arguments that set it, NUL-separated
  image-spec.py check-config FILE [--arch A]
                                        FILE is `skopeo inspect --config` output: exit 1
                                        unless its os, architecture and config are exactly
                                        the expected ones
  image-spec.py annotate-index INDEX NAME [--arch A]
                                        add the containerd image name and the platform to the
                                        single manifest of an OCI index.json, in place
  image-spec.py self-test               checks this model of the Dockerfile on small cases
  image-spec.py check-refs              exit 1 unless every image reference in the Dockerfile,
                                        manifests, chart, docs, scripts and sources is NAME,
                                        every imagePullPolicy is PULL_POLICY, the chart's
                                        version, appVersion and image values match, and the
                                        Dockerfile's version and licence labels match Cargo.toml
"""

import json
import os
import re
import shlex
import sys
import tomllib

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Fully qualified, so that no runtime ever expands it to docker.io/library/...: the
# registry host has a dot. Nothing is published there (see docs/install-k3s.md); the
# manifests say imagePullPolicy: Never, so the kubelet never contacts it either.
REPOSITORY = "ghcr.io/bare-ccm/bare-ccm"
PULL_POLICY = "Never"

# BuildKit's starting point for FROM scratch on Linux (system.DefaultPathEnv("linux")).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ARCHES = ("amd64", "arm64")

# The instructions the final stage may use, and those that do not change the config.
CONFIG_INSTRUCTIONS = {"USER", "ENV", "LABEL", "EXPOSE", "ENTRYPOINT", "CMD", "WORKDIR"}
FILE_INSTRUCTIONS = {"COPY"}


RAISE = False  # self-test: raise Refused instead of exiting


def fail(message):
    if RAISE:
        raise Refused(message)
    print(f"image-spec: {message}", file=sys.stderr)
    sys.exit(1)


def cargo_package():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["workspace"]["package"]


def version():
    return cargo_package()["version"]


def name():
    return f"{REPOSITORY}:{version()}"


def instructions(text):
    """(line number, INSTRUCTION, arguments) of a Dockerfile, continuations joined."""
    out, buf, start = [], "", None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped, as Docker does
        if start is None:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf, start = "", None
    if buf:
        fail(f"Dockerfile ends inside a line continuation (line {start})")
    return out


def exec_form(where, word, args):
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        fail(f"{where}: {word} must be in exec form, a JSON array of strings (got {args!r})")
    return value


def pairs(where, word, args):
    if "$" in args:
        fail(f"{where}: {word} with a $ substitution is not modelled; write the value out")
    try:
        words = shlex.split(args, posix=True)
    except ValueError as e:
        fail(f"{where}: {word}: {e}")
    result = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            fail(f"{where}: {word} must be written KEY=VALUE (got {w!r})")
        result.append((key, value))
    if not result:
        fail(f"{where}: {word} without KEY=VALUE")
    return result


class Refused(Exception):
    """A Dockerfile this script does not model (raised instead of exiting in self-test)."""


def config(arch="amd64", text=None):
    """The configuration the Dockerfile's final stage (or `text`) gives the image."""
    if arch not in ARCHES:
        fail(f"unknown architecture {arch!r} (one of {', '.join(ARCHES)})")
    if text is None:
        with open(os.path.join(ROOT, "Dockerfile")) as f:
            text = f.read()
    parsed = instructions(text)
    froms = [i for i, (_, word, _) in enumerate(parsed) if word == "FROM"]
    if not froms:
        fail("Dockerfile has no FROM")
    line, _, base = parsed[froms[-1]]
    if base.split()[0] != "scratch":
        fail(f"Dockerfile:{line}: the final stage must be FROM scratch (got {base!r})")

    cfg = {"Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}
    for line, word, args in parsed[froms[-1] + 1 :]:
        where = f"Dockerfile:{line}"
        if word in FILE_INSTRUCTIONS:
            continue
        if word not in CONFIG_INSTRUCTIONS:
            fail(f"{where}: {word} in the final stage is not modelled by scripts/image-spec.py")
        if word == "USER":
            if "$" in args or not args or " " in args:
                fail(f"{where}: USER must be one literal user[:group]")
            cfg["User"] = args
        elif word == "ENV":
            env = cfg["Env"]
            for key, value in pairs(where, word, args):
                entry = f"{key}={value}"
                for i, existing in enumerate(env):
                    if existing.split("=", 1)[0] == key:
                        env[i] = entry
                        break
                else:
                    env.append(entry)
        elif word == "LABEL":
            cfg.setdefault("Labels", {}).update(pairs(where, word, args))
        elif word == "EXPOSE":
            for port in args.split():
                if not re.fullmatch(r"\d+(/(tcp|udp|sctp))?", port):
                    fail(f"{where}: EXPOSE {port!r} is not a literal port")
                cfg.setdefault("ExposedPorts", {})[port if "/" in port else port + "/tcp"] = {}
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = exec_form(where, word, args)
        elif word == "CMD":
            cfg["Cmd"] = exec_form(where, word, args)
        elif word == "WORKDIR":
            if not args.startswith("/") or "$" in args:
                fail(f"{where}: WORKDIR must be an absolute literal path")
            cfg["WorkingDir"] = args
    return {"architecture": arch, "os": "linux", "config": cfg}


def umoci_args(arch="amd64"):
    spec = config(arch)
    cfg = spec["config"]
    args = [f"--architecture={spec['architecture']}", f"--os={spec['os']}"]
    args += [f"--config.user={cfg['User']}"] if "User" in cfg else []
    args += [f"--config.workingdir={cfg['WorkingDir']}"]
    args += [f"--config.env={e}" for e in cfg["Env"]]
    args += [f"--config.entrypoint={e}" for e in cfg.get("Entrypoint", [])]
    args += [f"--config.cmd={c}" for c in cfg.get("Cmd", [])]
    args += [f"--config.exposedports={p}" for p in cfg.get("ExposedPorts", {})]
    args += [f"--config.label={k}={v}" for k, v in sorted(cfg.get("Labels", {}).items())]
    return args


def without_empty(value):
    """Drop null and empty members: `"Volumes": null` and an absent Volumes are the same."""
    if isinstance(value, dict):
        return {k: without_empty(v) for k, v in value.items() if v not in (None, {}, [], "")}
    return value


def check_config(path, arch="amd64"):
    with open(path) as f:
        actual = json.load(f)
    expected = config(arch)
    problems = []
    for key in ("os", "architecture"):
        if actual.get(key) != expected[key]:
            problems.append(f"{key}: archive {actual.get(key)!r}, Dockerfile {expected[key]!r}")
    if actual.get("variant"):
        problems.append(f"variant: archive {actual['variant']!r}, Dockerfile none")
    got, want = without_empty(actual.get("config") or {}), without_empty(expected["config"])
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            problems.append(
                f"config.{key}: archive {json.dumps(got.get(key))}, Dockerfile {json.dumps(want.get(key))}"
            )
    if problems:
        print("image-spec: the archive's configuration differs from the Dockerfile's:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print(f"image-spec: the archive's os, architecture and config equal the Dockerfile's ({len(want)} config fields)")


def annotate_index(path, image, arch="amd64"):
    with open(path) as f:
        index = json.load(f)
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        fail(f"{path}: expected exactly one manifest, found {len(manifests)}")
    m = manifests[0]
    tag = image.rsplit(":", 1)[1]
    # containerd names an imported image after io.containerd.image.name and only falls back
    # to org.opencontainers.image.ref.name (client/import.go, imageName()); k3s imports
    # agent/images/ tarballs without a reference translator, so the full name must be in
    # the containerd annotation. The OCI annotation stays the tag alone, as containerd's own
    # exporter writes it (core/images/archive/reference.go, ociReferenceName()).
    m["annotations"] = {
        "io.containerd.image.name": image,
        "org.opencontainers.image.ref.name": tag,
    }
    m["platform"] = {"architecture": arch, "os": "linux"}
    with open(path, "w") as f:
        f.write(json.dumps(index, separators=(",", ":"), sort_keys=True))


# An image reference to a bare-ccm image with a version tag, with whatever registry and
# path precede it (none for the unqualified name this check exists to catch).
REF = re.compile(r"(?<![\w./:-])((?:[\w.-]+(?::\d+)?/)*bare-ccm):(\d+\.\d+\.\d+)\b")
SCANNED = ("Dockerfile", "README.md", "CHANGELOG.md", "charts", "docs", "manifests", "scripts", "src", "tests")
CHART = "charts/bare-ccm"


def check_refs():
    problems = []
    current = name()
    files = []
    for entry in SCANNED:
        path = os.path.join(ROOT, entry)
        if os.path.isfile(path):
            files.append(path)
        for base, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("target", "__pycache__")]
            files += [os.path.join(base, n) for n in names if n.endswith((".md", ".yaml", ".in", ".rs", ".sh", ".py", ".tpl", ".txt", ".header"))]
    refs = 0
    for path in sorted(files):
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for number, line in enumerate(text.splitlines(), 1):
            for m in REF.finditer(line):
                refs += 1
                repo, tag = m.group(1), m.group(2)
                # Private-registry examples use the documentation domains of RFC 2606.
                if ".example" in repo or "example." in repo:
                    continue
                if repo != REPOSITORY:
                    problems.append(f"{rel}:{number}: {m.group(0)} is not {REPOSITORY}:<version>")
                elif tag == version() and m.group(0) != current:
                    problems.append(f"{rel}:{number}: {m.group(0)} is not {current}")
            if rel.startswith("manifests") and rel.endswith((".yaml", ".in")):
                field = re.match(r"\s*image:\s*(\S+)", line)
                if field and field.group(1) != current:
                    problems.append(f"{rel}:{number}: image {field.group(1)}, want {current}")
                policy = re.match(r"\s*imagePullPolicy:\s*(\S+)", line)
                if policy and policy.group(1) != PULL_POLICY:
                    problems.append(f"{rel}:{number}: imagePullPolicy {policy.group(1)}, want {PULL_POLICY}")
    problems += check_chart()
    images = 0
    rendered_files = sorted(f"manifests/{n}" for n in os.listdir(os.path.join(ROOT, "manifests")) if n.endswith(".yaml"))
    for rendered in rendered_files:
        with open(os.path.join(ROOT, rendered)) as f:
            text = f.read()
        found = re.findall(r"^\s*image:\s*(\S+)", text, re.M)
        images += len(found)
        if not found:
            problems.append(f"{rendered}: no image field")
        if len(re.findall(r"^\s*imagePullPolicy:\s*" + PULL_POLICY + r"\s*$", text, re.M)) != len(found):
            problems.append(f"{rendered}: every container needs imagePullPolicy: {PULL_POLICY}")
    labels = config()["config"].get("Labels", {})
    package = cargo_package()
    for key, want in (("org.opencontainers.image.version", package["version"]),
                      ("org.opencontainers.image.licenses", package["license"])):
        if labels.get(key) != want:
            problems.append(f"Dockerfile: LABEL {key}={labels.get(key)!r}, Cargo.toml says {want!r}")
    if problems:
        print("image-spec: image references disagree:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print(f"image-spec: {refs} image references and {images} manifest image fields all name {current} "
          f"(imagePullPolicy {PULL_POLICY}); Dockerfile labels match Cargo.toml")


def check_chart():
    """The chart's version and appVersion are the Cargo version, and its image values give
    NAME with PULL_POLICY (tag "" means appVersion)."""
    problems = []
    chart_yaml = os.path.join(ROOT, CHART, "Chart.yaml")
    values_yaml = os.path.join(ROOT, CHART, "values.yaml")
    top = {}
    with open(chart_yaml) as f:
        for line in f:
            m = re.match(r"(version|appVersion):\s*\"?([^\"\s]+)\"?\s*$", line)
            if m:
                top[m.group(1)] = m.group(2)
    for key in ("version", "appVersion"):
        if top.get(key) != version():
            problems.append(f"{CHART}/Chart.yaml: {key} {top.get(key)!r}, Cargo.toml says {version()!r}")
    image, section = {}, None
    with open(values_yaml) as f:
        for line in f:
            if re.match(r"^\S", line):
                section = line.split(":", 1)[0]
            m = re.match(r"^  (repository|tag|pullPolicy):\s*\"?([^\"#]*?)\"?\s*(#.*)?$", line)
            if section == "image" and m:
                image[m.group(1)] = m.group(2)
    want = {"repository": REPOSITORY, "tag": "", "pullPolicy": PULL_POLICY}
    for key, value in want.items():
        if image.get(key) != value:
            problems.append(f"{CHART}/values.yaml: image.{key} {image.get(key)!r}, want {value!r}")
    return problems


def self_test():
    """The model of BuildKit's semantics, on small Dockerfiles; and refusals."""
    global RAISE
    RAISE = True
    path = f"PATH={DEFAULT_PATH}"
    accepted = [
        ("FROM scratch\n", {"Env": [path], "WorkingDir": "/"}),
        ("FROM x AS b\nRUN make\nFROM scratch\nCOPY --from=b /a /a\nENV A=1 B=\"two words\"\nENV A=3\n"
         "USER 1:2\nWORKDIR /w\nEXPOSE 80 53/udp\nLABEL k=v \\\n  # a comment inside\n  l=\"x=y\"\n"
         'ENTRYPOINT ["/e"]\nCMD ["a", "b"]\n',
         {"Env": [path, "A=3", "B=two words"], "WorkingDir": "/w", "User": "1:2",
          "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"k": "v", "l": "x=y"},
          "Entrypoint": ["/e"], "Cmd": ["a", "b"]}),
        ("FROM scratch\nENV PATH=/bin\n", {"Env": ["PATH=/bin"], "WorkingDir": "/"}),
    ]
    refused = [
        "FROM debian\n",
        "FROM scratch\nRUN true\n",
        "FROM scratch\nHEALTHCHECK NONE\n",
        "FROM scratch\nVOLUME /data\n",
        "FROM scratch\nENTRYPOINT /bare-ccm run\n",
        "FROM scratch\nCMD run\n",
        "FROM scratch\nENV A=$B\n",
        "FROM scratch\nENV A 1\n",
        "FROM scratch\nUSER $U\n",
        "FROM scratch\nWORKDIR rel\n",
        "FROM scratch\nEXPOSE $P\n",
        "FROM scratch\nLABEL a=1 \\\n",
    ]
    bad = 0
    for text, want in accepted:
        got = config("amd64", text)
        if got != {"architecture": "amd64", "os": "linux", "config": want}:
            bad += 1
            print(f"  BAD {text!r}: {got['config']} != {want}", file=sys.stderr)
    for text in refused:
        try:
            config("amd64", text)
            bad += 1
            print(f"  BAD {text!r} was accepted", file=sys.stderr)
        except Refused:
            pass
    RAISE = False
    if bad:
        fail(f"self-test: {bad} case(s) wrong")
    print(f"image-spec: self-test: {len(accepted)} Dockerfiles modelled as BuildKit builds them, "
          f"{len(refused)} unmodelled ones refused")


def main(argv):
    args, arch = [], "amd64"
    it = iter(argv)
    for a in it:
        if a == "--arch":
            arch = next(it, None) or fail("--arch needs a value")
        elif a.startswith("--arch="):
            arch = a.split("=", 1)[1]
        else:
            args.append(a)
    if not args:
        fail("usage: see the top of scripts/image-spec.py")
    command, rest = args[0], args[1:]
    if command == "name" and not rest:
        print(name())
    elif command == "version" and not rest:
        print(version())
    elif command == "config" and not rest:
        print(json.dumps(config(arch), indent=2, sort_keys=True))
    elif command == "umoci-args" and not rest:
        sys.stdout.write("".join(a + "\0" for a in umoci_args(arch)))
    elif command == "check-config" and len(rest) == 1:
        check_config(rest[0], arch)
    elif command == "annotate-index" and len(rest) == 2:
        annotate_index(rest[0], rest[1], arch)
    elif command == "check-refs" and not rest:
        check_refs()
    elif command == "self-test" and not rest:
        self_test()
    else:
        fail(f"unknown command or wrong arguments: {' '.join(args)} (see the top of scripts/image-spec.py)")


if __name__ == "__main__":
    main(sys.argv[1:])
