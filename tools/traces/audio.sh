#!/usr/bin/env bash
# audio: mpv plays the generated MP3 in real time (--ao=null keeps real-time pacing without a sound card), as a
# person listening to music. Usage: audio.sh OUT.kptrace [SECONDS]
. "$(dirname "$0")/common.sh"
[ -s "$INPUTS/audio.mp3" ] || "$here/inputs.sh" >/dev/null
capture audio "$seconds" mpv --no-config --really-quiet --no-terminal --ao=null --vo=null --no-video \
  --length="$seconds" "$INPUTS/audio.mp3"
