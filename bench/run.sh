#!/usr/bin/env bash
# bench/run.sh: measures the idv handler side by side with stock Caddy, on
# loopback, with idv_sandbox as the provider, and writes BENCHMARKS.md.
# See bench/README.md. Environment overrides:
#   BENCH_DURATION (3s)   length of each wrk run
#   BENCH_ROUNDS   (6)    interleaved rounds per compared pair (even: each side goes first as often)
#   BENCH_SESSIONS (100000) sessions stored for the resume/storage test
#   BENCH_OUT      (BENCHMARKS.md) where the markdown goes
#   BENCH_RESULTS  (bench/results) where the raw results and logs go (emptied first)
#   BENCH_STREAMS  (10000) concurrent /api/session/events streams (row 4)
#   BENCH_HOOKS    (200)   webhooks timed to their streams (row 4)
#   BENCH_BODY_MIB (5)     size of each upload and download (row 3), 50 at a time
#   BENCH_BODY_DURATION (6s) length of each big-body wrk run
#   BENCH_BODY_ROUNDS (4) interleaved rounds of each big-body pair
#   BENCH_ONLY     (all)   space-separated sections to run: nonapi pt session redis body streams burst mem resume
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-3s}
ROUNDS=${BENCH_ROUNDS:-6}
SESSIONS=${BENCH_SESSIONS:-100000}
STREAMS=${BENCH_STREAMS:-10000}
HOOKS=${BENCH_HOOKS:-200}
BODY_MIB=${BENCH_BODY_MIB:-5}
# Transfers of 5 MiB vary more from round to round than small requests.
BODY_ROUNDS=${BENCH_BODY_ROUNDS:-4}
ONLY=${BENCH_ONLY:-nonapi pt session redis body streams burst mem resume}
want() { [[ " $ONLY " == *" $1 "* ]]; }
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
THREADS=2
CONNS=50
WRK_SETTINGS="wrk -t$THREADS -c$CONNS -d$DURATION --timeout 10s --latency (1000 connections for the memory rows)"
COMMAND="bench/run.sh"
for v in BENCH_DURATION BENCH_ROUNDS BENCH_SESSIONS BENCH_STREAMS BENCH_HOOKS BENCH_BODY_MIB BENCH_BODY_ROUNDS BENCH_ONLY; do
	if [ -n "${!v:-}" ]; then COMMAND="$v=${!v} $COMMAND"; fi
done

RES=${BENCH_RESULTS:-$ROOT/bench/results} # raw outputs and logs of the last run (git-ignored)
rm -rf "$RES"
mkdir -p "$RES"
RESULTS=$RES/results.jsonl
: >"$RESULTS"

log() { printf '== [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || {
		$SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
	}
fi
command -v wrk >/dev/null || die "wrk is not installed"
command -v curl >/dev/null || die "curl is not installed"
# 1000 connections need more than the usual 1024 descriptors (Go raises its
# own limit; wrk does not).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# (10 000 streams need 10 000 descriptors in the idv process, which inherits
# this limit, and as many in bench/streams, which raises its own.)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/idv-bench.XXXXXX")
# A second idv process keeps its storage in memory (tmpfs), to show what the
# file system's fsyncs cost session creation.
SHM=""
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SHM=$(mktemp -d /dev/shm/idv-bench.XXXXXX); fi
declare -A PID=()
cleanup() {
	local name
	for name in "${!PID[@]}"; do
		kill "${PID[$name]}" 2>/dev/null || true
	done
	for name in "${!PID[@]}"; do
		wait "${PID[$name]}" 2>/dev/null || true
	done
	if [ -n "${REDIS_PID:-}" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
	if [ -n "$SHM" ]; then rm -rf "$SHM"; fi
}
trap cleanup EXIT

log "building ./cmd/caddy"
CADDY=$TMP/caddy
go build -o "$CADDY" ./cmd/caddy

# --- ports and processes -------------------------------------------------------
mapfile -t ports < <(go run ./bench/freeport -n 21)
[ "${#ports[@]}" = 21 ] || die "could not get free ports"
export HELLO_PORT=${ports[0]} SANDBOX_PORT=${ports[1]} IDV_PORT=${ports[2]} PLAIN_PORT=${ports[3]} \
	PLAIN_PT_PORT=${ports[4]} PLAIN_START_PORT=${ports[5]} STORE_SMALL_PORT=${ports[6]} \
	STORE_LARGE_PORT=${ports[7]} BURST_PORT=${ports[8]} FOCALX_SANDBOX_PORT=${ports[9]}
IDV_SHM_PORT=${ports[10]}
export REDIS_PORT=${ports[11]} IDV_REDIS_PORT=${ports[12]} SINK_PORT=${ports[13]} IDV_BODY_PORT=${ports[14]} \
	PLAIN_BODY_PORT=${ports[15]} IDV_STREAMS_PORT=${ports[16]} IDV_STREAMS_TLS_PORT=${ports[17]} TOKEN_PORT=${ports[18]} \
	PLAIN_STREAMS_PORT=${ports[19]} PLAIN_STREAMS_TLS_PORT=${ports[20]}
export IDV_API_PORT=$SANDBOX_PORT
export IDV_STORAGE=$TMP/idv-storage STORE_STORAGE=$TMP/store-storage BURST_STORAGE=$TMP/burst-storage
SANDBOX=http://127.0.0.1:$SANDBOX_PORT
IDV=http://127.0.0.1:$IDV_PORT

# start_caddy <name> <Caddyfile under bench/caddyfiles>: runs Caddy with its
# own XDG dirs and waits until it accepts connections on <port>.
start_caddy() {
	local name=$1 file=$2 port=$3 dir=$TMP/proc-$1
	mkdir -p "$dir/data" "$dir/config"
	XDG_DATA_HOME=$dir/data XDG_CONFIG_HOME=$dir/config \
		"$CADDY" run --adapter caddyfile --config "$ROOT/bench/caddyfiles/$file" >>"$RES/caddy-$name.log" 2>&1 &
	PID[$name]=$!
	local i
	for i in $(seq 1 200); do
		if curl -s -o /dev/null -m 1 "http://127.0.0.1:$port/"; then
			return 0
		fi
		kill -0 "${PID[$name]}" 2>/dev/null || {
			cat "$RES/caddy-$name.log" >&2
			die "caddy $name exited"
		}
		sleep 0.05
	done
	die "caddy $name did not start (see $RES/caddy-$name.log)"
}

stop_caddy() {
	local name=$1
	kill "${PID[$name]}" 2>/dev/null || true
	wait "${PID[$name]}" 2>/dev/null || true
	unset "PID[$name]"
}

status_kb() { # status_kb <pid> <VmRSS|VmHWM>
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # user + system CPU time of <pid>, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# --- wrk -------------------------------------------------------------------------
# run_wrk <id> <round> <connections> <process> <url> [extra wrk args]:
# round 0 is a warm-up and is not recorded. The CPU time the named Caddy
# process spends during the run, per request, is recorded with the result:
# unlike req/s it hardly depends on what else the machine is doing.
run_wrk() {
	local id=$1 round=$2 conns=$3 proc=$4 url=$5
	shift 5
	local raw=$RES/wrk-$id-$round.txt dur=$DURATION pid=${PID[$proc]} t0 t1
	if [ "$round" = 0 ]; then dur=1s; fi
	t0=$(cpu_ticks "$pid")
	BENCH_ID=$id BENCH_ROUND=$round wrk -t"$THREADS" -c"$conns" -d"$dur" --timeout 10s --latency \
		-s "$ROOT/bench/wrk.lua" "$@" "$url" >"$raw" 2>&1 || {
		cat "$raw" >&2
		die "wrk failed for $id"
	}
	t1=$(cpu_ticks "$pid")
	local json
	json=$(sed -n 's/^BENCHJSON //p' "$raw")
	[ -n "$json" ] || die "no result from wrk for $id (see $raw)"
	json="${json%\}},\"process\":\"$proc\",\"cpu_ticks\":$((t1 - t0)),\"clk_tck\":$CLK_TCK}"
	if [ "$round" != 0 ]; then echo "$json" >>"$RESULTS"; fi
	printf '   %-18s round %s  %s  cpu %s ticks\n' "$id" "$round" \
		"$(echo "$json" | sed -E 's/.*"rps":([0-9.]+).*"p50_us":([0-9]+).*"p99_us":([0-9]+).*"non2xx":([0-9]+).*/\1 req\/s  p50 \2us  p99 \3us  non2xx \4/')" \
		"$((t1 - t0))" >&2
}

# The two sides of a pair, as arrays set by the caller: id, process, URL,
# then extra wrk arguments.
A=() B=()
# pair <rounds>: warms both sides, then runs them interleaved, A B / B A / ...
# alternate <rounds> <f>...: runs "<f> <round>" for each function, in the
# order given on odd rounds and reversed on even ones, so no side always
# goes first.
alternate() {
	local rounds=$1 r i
	shift
	for r in $(seq 1 "$rounds"); do
		if [ $((r % 2)) = 1 ]; then
			for ((i = 1; i <= $#; i++)); do "${!i}" "$r"; done
		else
			for ((i = $#; i >= 1; i--)); do "${!i}" "$r"; done
		fi
	done
}

pair_a() { run_wrk "${A[0]}" "$1" "$CONNS" "${A[@]:1}"; }
pair_b() { run_wrk "${B[0]}" "$1" "$CONNS" "${B[@]:1}"; }
pair() {
	pair_a 0
	pair_b 0
	alternate "$1" pair_a pair_b
}

json_field() { # json_field <name>: a string field of a flat JSON object on stdin
	sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
}

# --- machine -------------------------------------------------------------------------
meta() {
	local k=$1 v=$2
	v=${v//\\/\\\\}
	v=${v//\"/\\\"}
	printf '{"kind":"meta","meta":{"%s":"%s"}}\n' "$k" "$v" >>"$RESULTS"
}
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta command "\`$COMMAND\`"
meta machine "$(nproc) CPUs (nproc), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2/1048576 }' /proc/meminfo)"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
meta kernel "$(uname -sr)"
meta go "$(go version)"
meta caddy "$("$CADDY" version | cut -d' ' -f1)"
meta wrk "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
meta wrk_settings "\`$WRK_SETTINGS\`"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg) (shared machine: other work may run)"

# --- start -------------------------------------------------------------------------
log "starting the upstreams (hello + sandbox) and the idv site"
start_caddy upstream upstream.Caddyfile "$HELLO_PORT"
start_caddy idv idv.Caddyfile "$IDV_PORT"

start_json=$(curl -sf "$IDV/api/start") || die "GET /api/start failed"
TOKEN=$(echo "$start_json" | json_field token)
UNIQUE_ID=$(echo "$start_json" | json_field uniqueId)
onb_json=$(curl -sf "$IDV/api/onboarding-url") || die "GET /api/onboarding-url failed"
INTERVIEW_ID=$(echo "$onb_json" | json_field interviewId)
[ -n "$TOKEN" ] && [ -n "$UNIQUE_ID" ] && [ -n "$INTERVIEW_ID" ] || die "unexpected answers: $start_json $onb_json"
export BENCH_TOKEN=$TOKEN
start_caddy plain plain.Caddyfile "$PLAIN_PORT"

# The two sides must give the same answers before their speed is compared.
check_same() { # check_same <what> <url A> <url B> [curl args]
	local what=$1 a=$2 b=$3
	shift 3
	local ra rb
	ra=$(curl -s -w ' %{http_code}' "$@" "$a")
	rb=$(curl -s -w ' %{http_code}' "$b")
	[ "${ra##* }" = 200 ] && [ "${rb##* }" = 200 ] || die "$what: expected 200 from both, got: idv: $ra / baseline: $rb"
	[ "$ra" = "$rb" ] || log "note: $what answers differ: idv: $ra / baseline: $rb"
}
check_same "non-API" "$IDV/" "http://127.0.0.1:$PLAIN_PORT/"
check_same "passthrough" "$IDV/api/0/omni/get/score" "http://127.0.0.1:$PLAIN_PT_PORT/api/0/omni/get/score" \
	-H "X-Incode-Hardware-Id: $TOKEN"

# --- 1. non-API traffic ---------------------------------------------------------------
if want nonapi; then
log "1. non-API traffic: idv + reverse_proxy vs reverse_proxy"
A=(nonapi-idv idv "$IDV/")
B=(nonapi-plain plain "http://127.0.0.1:$PLAIN_PORT/")
pair "$ROUNDS"
fi

# --- 2. passthrough ---------------------------------------------------------------
if want pt; then
log "2. passthrough: idv /api/0/omni/get/score vs rewrite + reverse_proxy"
A=(pt-idv idv "$IDV/api/0/omni/get/score" -H "X-Incode-Hardware-Id: $TOKEN")
B=(pt-plain plain "http://127.0.0.1:$PLAIN_PT_PORT/api/0/omni/get/score")
pair "$ROUNDS"
# The browser's way (the demo's): the session cookie and X-IDV: 1, no token
# header; the handler finds the token itself.
log "2. passthrough with the session cookie + X-IDV: 1 vs rewrite + reverse_proxy"
A=(pt-cookie-idv idv "$IDV/api/0/omni/get/score" -H "Cookie: idv_session=$UNIQUE_ID" -H "X-IDV: 1")
B=(pt-plain plain "http://127.0.0.1:$PLAIN_PT_PORT/api/0/omni/get/score")
pair "$ROUNDS"
fi

# --- 3. /api/start and /api/onboarding-url ---------------------------------------------
START_BODY='{"configurationId":"sandbox-flow","countryCode":"ALL","language":"en-US"}'
plain_start() { # plain_start <id> <round>: the bare provider call
	WRK_METHOD=POST WRK_BODY=$START_BODY run_wrk "$1" "$2" "$CONNS" plain "http://127.0.0.1:$PLAIN_START_PORT/"
}
if want session; then
log "3. /api/start, /api/onboarding-url, resume; sandbox latency 0"
curl -sf -X DELETE "$SANDBOX/__sandbox/faults" >/dev/null
# Issue 12.1's rows: both routes interleaved with the bare provider call
# they wrap, over the same rounds as every compared pair.
run_wrk start-idv-0 0 "$CONNS" idv "$IDV/api/start"
run_wrk onb-idv-0 0 "$CONNS" idv "$IDV/api/onboarding-url"
plain_start start-plain-0 0
start_idv() { run_wrk start-idv-0 "$1" "$CONNS" idv "$IDV/api/start"; }
onb_idv() { run_wrk onb-idv-0 "$1" "$CONNS" idv "$IDV/api/onboarding-url"; }
start_plain() { plain_start start-plain-0 "$1"; }
alternate "$ROUNDS" start_idv onb_idv start_plain
# Counts that do not depend on the machine's load: the syscalls that make
# a session durable, per answered /api/start (strace slows the process, so
# these runs are not in the table's rates).
if command -v strace >/dev/null 2>&1; then
	strace -f -c -e trace=fdatasync,fsync,pwrite64 -p "${PID[idv]}" -o "$RES/strace-start.txt" 2>/dev/null &
	STRACE_PID=$!
	sleep 0.5
	run_wrk start-idv-strace 1 "$CONNS" idv "$IDV/api/start"
	kill -INT "$STRACE_PID" 2>/dev/null || true
	wait "$STRACE_PID" 2>/dev/null || true
	sc() { awk -v n="$1" '$NF == n { print $4 }' "$RES/strace-start.txt" | head -1; }
	reqs=$(sed -n 's/^BENCHJSON .*"requests":\([0-9]*\).*/\1/p' "$RES/wrk-start-idv-strace-1.txt")
	printf '{"kind":"syscalls","id":"start-idv-strace","requests":%s,"fdatasync":%s,"fsync":%s,"pwrite":%s}\n' \
		"${reqs:-0}" "$(sc fdatasync)" "$(sc fsync)" "$(sc pwrite64)" | sed 's/:,/:0,/g; s/:}/:0}/' >>"$RESULTS"
else
	echo '{"kind":"skipped","what":"syscall counts of /api/start","reason":"strace is not installed"}' >>"$RESULTS"
fi
# The store alone (bench/storewrites): 50 and 1 concurrent creators on this
# disk, and 50 on tmpfs; commits and pages per session from the store.
go build -o "$TMP/storewrites" ./bench/storewrites
"$TMP/storewrites" -root "$TMP/sw-disk" -c "$CONNS" -id store-disk | tee -a "$RESULTS" >&2
"$TMP/storewrites" -root "$TMP/sw-disk1" -c 1 -id store-disk-1 | tee -a "$RESULTS" >&2
if [ -n "$SHM" ]; then
	"$TMP/storewrites" -root "$SHM/sw" -c "$CONNS" -id store-tmpfs | tee -a "$RESULTS" >&2
	rm -rf "$SHM/sw"
fi
rm -rf "$TMP/sw-disk" "$TMP/sw-disk1"
if [ -n "$SHM" ]; then
	IDV_PORT=$IDV_SHM_PORT IDV_STORAGE=$SHM start_caddy idv-shm idv.Caddyfile "$IDV_SHM_PORT"
	run_wrk start-idv-shm 0 "$CONNS" idv-shm "http://127.0.0.1:$IDV_SHM_PORT/api/start"
	for r in 1 2; do
		run_wrk start-idv-shm "$r" "$CONNS" idv-shm "http://127.0.0.1:$IDV_SHM_PORT/api/start"
		run_wrk onb-idv-shm "$r" "$CONNS" idv-shm "http://127.0.0.1:$IDV_SHM_PORT/api/onboarding-url"
	done
	stop_caddy idv-shm
fi
run_wrk resume-idv 0 "$CONNS" idv "$IDV/api/start?uniqueId=$UNIQUE_ID"
run_wrk resume-idv 1 "$CONNS" idv "$IDV/api/start?uniqueId=$UNIQUE_ID"
log "3. the same with 50 ms of sandbox latency on every Incode call"
curl -sf -X POST -H 'Content-Type: application/json' -d '{"provider":"incode","op":"*","latency":"50ms"}' \
	"$SANDBOX/__sandbox/faults" >/dev/null
run_wrk start-idv-50 0 "$CONNS" idv "$IDV/api/start"
plain_start start-plain-50 0
run_wrk start-idv-50 1 "$CONNS" idv "$IDV/api/start"
plain_start start-plain-50 1
run_wrk onb-idv-50 1 "$CONNS" idv "$IDV/api/onboarding-url"
curl -sf -X DELETE "$SANDBOX/__sandbox/faults" >/dev/null
# Sessions are in one database on the file storage (idv/sessions.db);
# session files are only those written before it, or by bench/sessions -layout files.
db_kb=$(du -k "$IDV_STORAGE/idv/sessions.db" 2>/dev/null | cut -f1)
log "   the idv site's session database: ${db_kb:-0} kB"
fi

# --- 3r. the same session rows with the sessions in Redis -------------------------
if want redis; then
	if command -v redis-server >/dev/null 2>&1; then
		log "3r. /api/start and /api/onboarding-url on Redis storage (idv_redis)"
		mkdir -p "$TMP/redis"
		# AOF with fsync every second: Redis's usual durable setting.
		redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save '' \
			--appendonly yes --appendfsync everysec >"$RES/redis.log" 2>&1 &
		REDIS_PID=$!
		for _ in $(seq 1 100); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then break; fi
			sleep 0.05
		done
		IDV_PORT=$IDV_REDIS_PORT start_caddy idv-redis idv-redis.Caddyfile "$IDV_REDIS_PORT"
		REDIS_IDV=http://127.0.0.1:$IDV_REDIS_PORT
		run_wrk start-idv-redis 0 "$CONNS" idv-redis "$REDIS_IDV/api/start"
		run_wrk onb-idv-redis 0 "$CONNS" idv-redis "$REDIS_IDV/api/onboarding-url"
		start_redis() { run_wrk start-idv-redis "$1" "$CONNS" idv-redis "$REDIS_IDV/api/start"; }
		onb_redis() { run_wrk onb-idv-redis "$1" "$CONNS" idv-redis "$REDIS_IDV/api/onboarding-url"; }
		start_plain_r() { plain_start start-plain-r "$1"; }
		alternate "$ROUNDS" start_redis onb_redis start_plain_r
		stop_caddy idv-redis
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
		REDIS_PID=""
	else
		echo '{"kind":"skipped","what":"Redis rows","reason":"redis-server is not installed"}' >>"$RESULTS"
	fi
fi

# --- 6. big bodies ----------------------------------------------------------------
body_idle() { # body_idle <process>: records the idle RSS and resets the peak
	local pid=${PID[$1]}
	BODY_IDLE[$1]=$(status_kb "$pid" VmRSS)
	echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
}
body_peak() { # body_peak <id> <process>
	local pid=${PID[$2]}
	printf '{"kind":"bodymem","id":"%s","process":"%s","idle_kb":%s,"hwm_kb":%s}\n' \
		"$1" "$2" "${BODY_IDLE[$2]}" "$(status_kb "$pid" VmHWM)" >>"$RESULTS"
	# Over the idle RSS of the fresh process for both loads: Go keeps the heap
	# the uploads grew, so the RSS between loads is no idle figure.
	echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
}
declare -A BODY_IDLE=()
if want body; then
	log "6. big bodies: $BODY_MIB MiB uploads and downloads, $CONNS at a time"
	go build -o "$TMP/bodysink" ./bench/bodysink
	"$TMP/bodysink" -addr "127.0.0.1:$SINK_PORT" -size $((BODY_MIB << 20)) -sandbox "$SANDBOX" >>"$RES/bodysink.log" 2>&1 &
	PID[bodysink]=$!
	IDV_PORT=$IDV_BODY_PORT IDV_API_PORT=$SINK_PORT IDV_STORAGE=$TMP/body-storage start_caddy idv-body idv.Caddyfile "$IDV_BODY_PORT"
	start_caddy plain-body plain-body.Caddyfile "$PLAIN_BODY_PORT"
	BODY_IDV=http://127.0.0.1:$IDV_BODY_PORT
	body_start=$(curl -sf "$BODY_IDV/api/start") || die "GET /api/start on idv-body failed"
	BODY_ID=$(echo "$body_start" | json_field uniqueId)
	curl -sf -o /dev/null -H "Cookie: idv_session=$BODY_ID" -H "X-IDV: 1" "$BODY_IDV/api/0/omni/bench/download" ||
		die "download through idv-body failed"
	sleep 1
	body_idle idv-body
	body_idle plain-body
	# Long enough for many complete transfers of 50 connections each.
	SAVED_DURATION=$DURATION
	DURATION=${BENCH_BODY_DURATION:-6s}
	up() { # up <id> <round> <process> <url>
		WRK_METHOD=POST WRK_BODY_BYTES=$((BODY_MIB << 20)) run_wrk "$1" "$2" "$CONNS" "$3" "$4" \
			-H "Cookie: idv_session=$BODY_ID" -H "X-IDV: 1"
	}
	up_idv() { up up-idv "$1" idv-body "$BODY_IDV/api/0/omni/bench/upload"; }
	up_plain() { up up-plain "$1" plain-body "http://127.0.0.1:$PLAIN_BODY_PORT/api/0/omni/bench/upload"; }
	alternate "$BODY_ROUNDS" up_idv up_plain
	body_peak up-idv idv-body
	body_peak up-plain plain-body
	down() { run_wrk "$1" "$2" "$CONNS" "$3" "$4" -H "Cookie: idv_session=$BODY_ID" -H "X-IDV: 1"; }
	down_idv() { down down-idv "$1" idv-body "$BODY_IDV/api/0/omni/bench/download"; }
	down_plain() { down down-plain "$1" plain-body "http://127.0.0.1:$PLAIN_BODY_PORT/api/0/omni/bench/download"; }
	alternate "$BODY_ROUNDS" down_idv down_plain
	body_peak down-idv idv-body
	body_peak down-plain plain-body
	DURATION=$SAVED_DURATION
	printf '{"kind":"meta","meta":{"body_mib":"%s"}}\n' "$BODY_MIB" >>"$RESULTS"
	stop_caddy idv-body
	stop_caddy plain-body
	stop_caddy bodysink
fi

# --- 7. many event streams ----------------------------------------------------------
if want streams; then
	log "7. $STREAMS concurrent /api/session/events streams, $HOOKS webhooks timed to their streams"
	go build -o "$TMP/streams" ./bench/streams
	# wait_tls <port>: an https site answers once its certificate is issued.
	wait_tls() {
		local i
		for i in $(seq 1 200); do
			if curl -sk -o /dev/null -m 1 "https://127.0.0.1:$1/"; then return 0; fi
			sleep 0.05
		done
		die "https://127.0.0.1:$1/ did not answer"
	}
	# fresh_sessions: every run gets sessions of its own (a webhook that
	# changes nothing sends no event).
	fresh_sessions() {
		rm -rf "$TMP/streams-storage"
		go run ./bench/sessions -root "$TMP/streams-storage" -namespace bench -n "$STREAMS" -ids "$TMP/ids-streams" \
			-refs "$TMP/refs-streams" >/dev/null
	}
	streams_run() { # streams_run <proto> <side> <process> <url> <streams>
		"$TMP/streams" -url "$4" -ids "$TMP/ids-streams" -refs "$TMP/refs-streams" -n "$5" -pid "${PID[$3]}" \
			-hooks "$HOOKS" -proto "$1" -side "$2" | tee -a "$RESULTS" >&2
	}
	# The baseline holds two descriptors per stream (the browser's
	# connection and the token server's): within this shell's limit, it
	# carries fewer streams when the limit is below twice BENCH_STREAMS
	# (the report shows the count; the cost per stream hardly depends on it).
	fds=$(ulimit -n)
	RP_STREAMS=$STREAMS
	if [ "$fds" != unlimited ] && [ $(((fds - 500) / 2)) -lt "$STREAMS" ]; then RP_STREAMS=$(((fds - 500) / 2)); fi
	# Each protocol: idv serving the streams; stock Caddy proxying them to a
	# token server (the glue idv replaces); and, on a fresh stock Caddy, as
	# many idle connections (what the protocol costs before any stream).
	# HTTP/1.1 streams are plain HTTP; HTTP/2 ones are over TLS, one
	# connection per stream, as browsers open them over HTTPS.
	for proto in h1 h2; do
		fresh_sessions
		if [ "$proto" = h1 ]; then
			IDV_PORT=$IDV_STREAMS_PORT IDV_STORAGE=$TMP/streams-storage IDV_PROTOCOLS=h1 \
				start_caddy idv-streams idv.Caddyfile "$IDV_STREAMS_PORT"
			streams_run h1 idv idv-streams "http://127.0.0.1:$IDV_STREAMS_PORT" "$STREAMS"
		else
			IDV_PORT=$IDV_STREAMS_TLS_PORT IDV_STORAGE=$TMP/streams-storage \
				start_caddy idv-streams idv-tls.Caddyfile "$IDV_STREAMS_TLS_PORT"
			wait_tls "$IDV_STREAMS_TLS_PORT"
			streams_run h2 idv idv-streams "https://127.0.0.1:$IDV_STREAMS_TLS_PORT" "$STREAMS"
		fi
		stop_caddy idv-streams

		fresh_sessions
		IDV_PORT=$TOKEN_PORT IDV_STORAGE=$TMP/streams-storage IDV_PROTOCOLS=h1 \
			start_caddy token-server idv.Caddyfile "$TOKEN_PORT"
		for what in streams idle; do
			rm -rf "$TMP/plain-streams-storage"
			PLAIN_STORAGE=$TMP/plain-streams-storage start_caddy plain-streams plain-streams.Caddyfile "$PLAIN_STREAMS_PORT"
			url="http://127.0.0.1:$PLAIN_STREAMS_PORT"
			if [ "$proto" = h2 ]; then
				wait_tls "$PLAIN_STREAMS_TLS_PORT"
				url="https://127.0.0.1:$PLAIN_STREAMS_TLS_PORT"
			fi
			if [ "$what" = streams ]; then
				streams_run "$proto" reverse_proxy plain-streams "$url" "$RP_STREAMS"
			else
				"$TMP/streams" -idle -url "$url/" -n "$STREAMS" -pid "${PID[plain-streams]}" -proto "$proto" |
					tee -a "$RESULTS" >&2
			fi
			stop_caddy plain-streams
		done
		stop_caddy token-server
	done
	rm -rf "$TMP/streams-storage" "$TMP/plain-streams-storage"
fi

# --- 4. cold-cache burst ---------------------------------------------------------------
if want burst; then
log "4. cold-cache burst: executive token"
BURST=http://127.0.0.1:$BURST_PORT
for n in 1 10 100 1000; do
	start_caddy burst burst.Caddyfile "$BURST_PORT"
	go run ./bench/burst -n "$n" -provider incode -op "incode executive/log-in" -sandbox "$SANDBOX" \
		-warm "$BURST/warm" -url "$BURST/api/onboarding-status?interviewId=$INTERVIEW_ID" | tee -a "$RESULTS" >&2
	stop_caddy burst
done
modules=$("$CADDY" list-modules 2>/dev/null || true)
if grep -qx 'idv.providers.focalx' <<<"$modules" &&
	"$CADDY" adapt --adapter caddyfile --config bench/caddyfiles/burst-focalx.Caddyfile >/dev/null 2>&1; then
	log "4. cold-cache burst: Focalx GetToken"
	for n in 1 10 100 1000; do
		start_caddy burst-focalx burst-focalx.Caddyfile "$BURST_PORT"
		go run ./bench/burst -n "$n" -provider focalx -op "focalx GetToken" \
			-sandbox "http://127.0.0.1:$FOCALX_SANDBOX_PORT" -header "X-User-Email: bench@example.com" \
			-warm "$BURST/warm" -url "$BURST/api/token" | tee -a "$RESULTS" >&2
		stop_caddy burst-focalx
	done
else
	echo '{"kind":"skipped","what":"Focalx GetToken burst","reason":"the focalx modules are not in this build"}' >>"$RESULTS"
fi
fi

# --- 5. memory ---------------------------------------------------------------------
# mem_run <id> <process> <load> <url> [wrk args]: 1000 connections, peak RSS.
mem_run() {
	local id=$1 proc=$2 load=$3 url=$4
	shift 4
	local pid=${PID[$proc]} reset=true before hwm after
	echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || reset=false
	before=$(status_kb "$pid" VmRSS)
	run_wrk "$id" 1 1000 "$proc" "$url" "$@"
	hwm=$(status_kb "$pid" VmHWM)
	after=$(status_kb "$pid" VmRSS)
	printf '{"kind":"mem","id":"%s","process":"%s","load":"%s","rss_before_kb":%s,"hwm_kb":%s,"rss_after_kb":%s,"hwm_reset":%s}\n' \
		"$id" "$proc" "$load" "$before" "$hwm" "$after" "$reset" >>"$RESULTS"
	log "   $proc: RSS ${before} kB before, peak ${hwm} kB, ${after} kB after"
}
if want mem; then
log "5. memory: 1000 connections, fresh processes"
# Fresh processes (idv on an empty storage), so each side's RSS is what
# 1000 connections cost and not what earlier rows left behind (the idv
# site's session database, mapped, is over 100 MB by now).
stop_caddy idv
stop_caddy plain
IDV_STORAGE=$TMP/mem-storage start_caddy idv idv.Caddyfile "$IDV_PORT"
start_caddy plain plain.Caddyfile "$PLAIN_PORT"
mem_run c1000-nonapi-idv idv "wrk -c1000 \`GET /\` (non-API)" "$IDV/"
mem_run c1000-nonapi-plain plain "wrk -c1000 \`GET /\` (non-API)" "http://127.0.0.1:$PLAIN_PORT/"
mem_run c1000-pt-idv idv "wrk -c1000 passthrough" "$IDV/api/0/omni/get/score" -H "X-Incode-Hardware-Id: $TOKEN"
mem_run c1000-pt-plain plain "wrk -c1000 passthrough" "http://127.0.0.1:$PLAIN_PT_PORT/api/0/omni/get/score"
fi
stop_caddy plain
stop_caddy idv

if want resume; then
log "5. storage: writing 100 and $SESSIONS sessions"
storage_line() { # storage_line <namespace> <n> <sessions tool output>
	local ns=$1 n=$2 out=$3 dir=$STORE_STORAGE/idv/$1 write_s files du app
	write_s=$(echo "$out" | sed -E 's/.*"write_s":([0-9.eE+-]+).*/\1/')
	if [ ! -d "$dir" ]; then dir=$STORE_STORAGE/idv/sessions.db; fi # the session database
	files=$(find "$dir" -type f | wc -l)
	du=$(du -sk "$dir" | cut -f1)
	app=$(du -sk --apparent-size "$dir" | cut -f1)
	printf '{"kind":"storage","namespace":"%s","n":%s,"files":%s,"du_kb":%s,"apparent_kb":%s,"write_s":%s}\n' \
		"$ns" "$n" "$files" "$du" "$app" "$write_s" >>"$RESULTS"
	log "   idv/$ns: $n sessions, $files files, ${du} kB on disk (${app} kB apparent), written in ${write_s}s"
}
out=$(go run ./bench/sessions -root "$STORE_STORAGE" -namespace bench-small -n 100 -ids "$TMP/ids-small")
storage_line bench-small 100 "$out"
out=$(go run ./bench/sessions -root "$STORE_STORAGE" -namespace bench-large -n "$SESSIONS" -ids "$TMP/ids-large")
storage_line bench-large "$SESSIONS" "$out"

log "5. resume with 100 vs $SESSIONS sessions stored"
start_caddy store store.Caddyfile "$STORE_SMALL_PORT"
rss_start=$(status_kb "${PID[store]}" VmRSS)
curl -sf "http://127.0.0.1:$STORE_LARGE_PORT/api/start?uniqueId=$(head -1 "$TMP/ids-large")" >/dev/null ||
	die "resume against the large namespace failed"
echo 5 >"/proc/${PID[store]}/clear_refs" 2>/dev/null || true
export WRK_PREFIX="/api/start?uniqueId="
LARGE=http://127.0.0.1:$STORE_LARGE_PORT/
SMALL=http://127.0.0.1:$STORE_SMALL_PORT/
# Each side reads its own ids (pair cannot give each side its own environment).
large() { WRK_IDS=$TMP/ids-large run_wrk resume-100k "$1" "$CONNS" store "$LARGE"; }
small() { WRK_IDS=$TMP/ids-small run_wrk resume-100 "$1" "$CONNS" store "$SMALL"; }
large 0
small 0
alternate "$ROUNDS" large small
unset WRK_PREFIX
printf '{"kind":"mem","id":"resume-100k","process":"store","load":"resume runs, %s + 100 sessions stored (RSS before = just after start)","rss_before_kb":%s,"hwm_kb":%s,"rss_after_kb":%s,"hwm_reset":true}\n' \
	"$SESSIONS" "$rss_start" "$(status_kb "${PID[store]}" VmHWM)" "$(status_kb "${PID[store]}" VmRSS)" >>"$RESULTS"
stop_caddy store
fi
stop_caddy upstream
log "removing the stored sessions"
rm -rf "$STORE_STORAGE" "$IDV_STORAGE"

# --- report -------------------------------------------------------------------------
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
log "writing $OUT"
go run ./bench/report -results "$RESULTS" -analysis "$ROOT/bench/analysis.md" -out "$OUT"
