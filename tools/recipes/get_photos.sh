#!/usr/bin/env bash
# Real photos used as extra training material for the default model
# (tools/recipes/train_default.sh).
# They come from Debian wallpaper packages (free licences: see each package's
# debian/copyright under /usr/share/doc); only the photographs are kept, not the drawings.
#
#   bash tools/recipes/get_photos.sh [DEST]      # default DEST: .data/photos
#   MATE="A B" PLASMA="C" bash tools/recipes/get_photos.sh DEST   # other pictures by name
#                                                  # (tools/recipes/make_validation.sh)
#   MATE=" " PLASMA=" " LOMIRI="16.04/A 20.04/B" bash tools/recipes/get_photos.sh DEST
#       # photos of lomiri-wallpapers-16.04 / -20.04 (tools/recipes/train_general.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-${PHOTOS:-.data/photos}}
read -r -a mate <<<"${MATE:-Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops \
TwoWings Wood YellowFlower}"
read -r -a plasma <<<"${PLASMA:-BytheWater ColdRipple ColorfulCups EveningGlow FallenLeaf Grey \
OneStandsOut Path}"
read -r -a lomiri <<<"${LOMIRI:-}"
count=$(( ${#mate[@]} + ${#plasma[@]} + ${#lomiri[@]} ))
have_all() {  # every listed lomiri photo by name, and at least as many files as listed
  for item in "${lomiri[@]}"; do [ -f "$dest/${item#*/}.jpg" ] || return 1; done
  [ "$(find "$dest" -maxdepth 1 -type f | wc -l)" -ge "$count" ]
}
if [ -d "$dest" ] && have_all; then
  echo "photos already in $dest"; exit 0
fi
if [ "$count" -eq 0 ]; then echo "no photos asked for"; exit 0; fi
work=$(mktemp -d)
chmod 755 "$work"  # apt downloads as the _apt user when it can
trap 'rm -rf "$work"' EXIT
packages=()
[ ${#mate[@]} -gt 0 ] && packages+=(mate-backgrounds)
[ ${#plasma[@]} -gt 0 ] && packages+=(plasma-workspace-wallpapers)
for item in "${lomiri[@]}"; do packages+=("lomiri-wallpapers-${item%%/*}"); done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
(cd "$work" && apt-get download -q "${packages[@]}" >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
mkdir -p "$dest"
for name in "${mate[@]}"; do
  cp "$work/x/usr/share/backgrounds/mate/nature/$name.jpg" "$dest/$name.jpg"
done
for name in "${plasma[@]}"; do
  # the largest rendition of each wallpaper
  src=$(ls -S "$work/x/usr/share/wallpapers/$name/contents/images/"* | head -1)
  cp "$src" "$dest/$name.${src##*.}"
done
for item in "${lomiri[@]}"; do
  cp "$work/x/usr/share/backgrounds/${item#*/}.jpg" "$dest/${item#*/}.jpg"
done
echo "$count photos in $dest"
