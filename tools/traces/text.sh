#!/usr/bin/env bash
# text: vim in tmux, a person typing a document at human speed (about 5 characters a second, pauses between
# sentences), with edits (deleted words, a deleted and re-put line), searches, undo/redo and a save every paragraph.
# The keystrokes are deterministic (bash RANDOM seeded). Usage: text.sh OUT.kptrace [SECONDS]
. "$(dirname "$0")/common.sh"
work=$(mktemp -d /tmp/kptrace-text.XXXXXX)
sock=kptrace-text-$$
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
printf 'Migration notes\n\n' >"$work/notes.txt"
cat >"$work/run" <<RUN
#!/usr/bin/env bash
$(declare -f capture_command capture)
KPTRACE_QUIET=1
out='$out' CLI='$CLI' KPTRACE_DRY='${KPTRACE_DRY:-0}' KPTRACE_SAMPLE_PAGES='${KPTRACE_SAMPLE_PAGES:-}'
capture text $((seconds + 30)) vim -N -i NONE -u DEFAULTS '+set noswapfile' '$work/notes.txt' 2>'$work/capture.log'
echo \$? >'$work/exit'
RUN
chmod +x "$work/run"
HOME=$work tmux -L "$sock" -f /dev/null new-session -d -x 100 -y 40 "$work/run"
keys() { tmux -L "$sock" send-keys "$@"; }
type_text() { # one key at a time, 80-320 ms apart, a longer pause after punctuation
  local s=$1 i c
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    keys -l -- "$c"
    case $c in [.,]) pause 300 900 ;; *) pause 80 240 ;; esac
  done
}
words=(migration memory page guest host network predictor window launch state copy dirty round budget target
  source kernel device latency bandwidth transfer checkpoint buffer socket interval history context resume
  the a of to and in that is it for with as on by this we be not are from at or which)
sentence() {
  local n=$((6 + RANDOM % 10)) s="" i
  for ((i = 0; i < n; i++)); do s+="${words[RANDOM % ${#words[@]}]} "; done
  s=${s% }
  echo "${s^}."
}
sleep 2
keys G o
RANDOM=11
start=$SECONDS
paragraph=0
while ((SECONDS - start < seconds)); do
  for _ in 1 2 3; do
    type_text "$(sentence) "
    ((SECONDS - start < seconds)) || break
    case $((RANDOM % 6)) in
      0) keys Escape; pause 400 600; keys d b; pause 300 400; keys a ;;           # delete the last word, go on
      1) keys Escape; pause 400 600; keys u; pause 500 800; keys C-r; keys A ;;   # undo, think, redo
      *) ;;
    esac
  done
  keys Escape; pause 500 1000
  case $((paragraph % 4)) in
    1) keys / "${words[RANDOM % 20]}" Enter; pause 600 800; keys n; pause 400 600; keys G ;;   # search, look, back
    2) keys k d d; pause 400 600; keys p; pause 300 500; keys G ;;                               # move a line
    3) keys g g; pause 800 800; keys G ;;                                                         # read from the top
  esac
  keys : w Enter; pause 500 800
  keys o Enter
  paragraph=$((paragraph + 1))
done
keys Escape : w q Enter
for _ in $(seq 300); do [ -e "$work/exit" ] && break; sleep 0.1; done
[ -e "$work/exit" ] || { echo "text: vim did not exit; capture log:" >&2; cat "$work/capture.log" >&2; exit 1; }
cat "$work/capture.log" >&2
echo "text: typed $(wc -w <"$work/notes.txt") words in $paragraph paragraphs" >&2
exit "$(cat "$work/exit")"
