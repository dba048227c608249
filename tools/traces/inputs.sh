#!/usr/bin/env bash
# Builds the inputs the trace captures play, deterministically, into build/trace-inputs (or $KPTRACE_INPUTS):
#   audio.mp3  75 s, 44.1 kHz stereo, 192 kbit/s MP3: a melody of sine tones over pink noise;
#   video.mp4  75 s, 1280x720, 25 fps H.264 (x264 veryfast, CRF 23 capped at 5 Mbit/s): the testsrc2 pattern under moving noise.
# Skips a file that exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${KPTRACE_INPUTS:-$here/../../build/trace-inputs}
mkdir -p "$dir"
if [ ! -s "$dir/audio.mp3" ]; then
  echo "trace inputs: generating audio.mp3" >&2
  ffmpeg -nostdin -loglevel error -y \
    -f lavfi -i "aevalsrc=0.25*sin(2*PI*(220*pow(2\,floor(mod(t*2\,12))/12))*t)+0.1*sin(2*PI*110*t):s=44100:d=75" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.05:d=75:seed=7" \
    -filter_complex "[0][1]amix=inputs=2,aformat=channel_layouts=stereo" -c:a libmp3lame -b:a 192k "$dir/audio.mp3.tmp.mp3"
  mv "$dir/audio.mp3.tmp.mp3" "$dir/audio.mp3"
fi
if [ ! -s "$dir/video.mp4" ]; then
  echo "trace inputs: generating video.mp4 (about a minute)" >&2
  ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=75" \
    -vf "noise=alls=4:allf=t" -c:v libx264 -preset veryfast -crf 23 -maxrate 5M -bufsize 10M -pix_fmt yuv420p "$dir/video.mp4.tmp.mp4"
  mv "$dir/video.mp4.tmp.mp4" "$dir/video.mp4"
fi
ls -l "$dir"
