#!/usr/bin/env bash
# video: mpv plays the generated 720p H.264 file at 25 fps through a real X11 video output (Xvfb, 1280x720, 24-bit),
# software decoding, as a person watching a film. Usage: video.sh OUT.kptrace [SECONDS]
. "$(dirname "$0")/common.sh"
[ -s "$INPUTS/video.mp4" ] || "$here/inputs.sh" >/dev/null
display=:$(( 90 + $$ % 9 ))
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null; wait $xvfb 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
DISPLAY=$display capture video "$seconds" mpv --no-config --really-quiet --no-terminal --vo=x11 --ao=null --hwdec=no \
  --fullscreen --length="$seconds" "$INPUTS/video.mp4"
