#!/usr/bin/env bash
# Renders deploy/manifests/lifeboat.yaml from the Helm chart with its default values (one
# replica on a SQLite volume, in the namespace `lifeboat`), for clusters installed without
# helm. tests/helm_chart.rs fails when the file is stale.
#   scripts/render-manifests.sh [path/to/helm]
set -euo pipefail
cd "$(dirname "$0")/.."
helm=${1:-${LIFEBOAT_TEST_HELM:-helm}}
{
  echo "# Rendered by scripts/render-manifests.sh from deploy/helm/lifeboat (default values); do not edit."
  "$helm" template lifeboat deploy/helm/lifeboat --namespace lifeboat --include-crds
} > deploy/manifests/lifeboat.yaml
