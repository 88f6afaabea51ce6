# Sourced by the scripts: where the project's Python tools live, so that the
# demo, the tests and the benchmark use the same ones (tests/support/tools.rs
# follows the same rule). A virtual environment made by
# scripts/install-deps.sh, with moto_server, aws and a python3 that has
# botocore in its bin/: $AWS_SESSION_DAEMON_TEST_ENV if set, else
# target/test-env in this checkout. Exports the variable as an absolute path.
AWS_SESSION_DAEMON_TEST_ENV=${AWS_SESSION_DAEMON_TEST_ENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/test-env}
AWS_SESSION_DAEMON_TEST_ENV=$(realpath -m "$AWS_SESSION_DAEMON_TEST_ENV")
export AWS_SESSION_DAEMON_TEST_ENV

# test_tool NAME: the path of NAME in the environment's bin/, or a message
# naming the fix and a failure.
test_tool() {
  local path=$AWS_SESSION_DAEMON_TEST_ENV/bin/$1
  if [ ! -x "$path" ]; then
    echo "$path is missing: run bash scripts/install-deps.sh" >&2
    return 1
  fi
  echo "$path"
}
