#!/usr/bin/env bash
# Installs everything the workspace needs on Debian/Ubuntu (apt) or Rocky/Fedora (dnf):
# the release-engineering tools and the pinned npm packages. Idempotent: it installs only
# what is missing, so a second run does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo; install the packages below by hand" >&2; exit 1; }
  SUDO="sudo"
fi

# Every tool the pipeline and its tests run (libs/exec/src/run.ts names each tool's package).
# curl: the Kubernetes builder's pod uploads its result with it, and the tests run that pod here.
# zstd, bzip2: upstream repodata compressed with them is decompressed by those tools
# (libs/rpm-repo repodata.ts); a minimal Debian has neither.
APT_PKGS=(rpm rpm2cpio createrepo-c dnf dnf-plugins-core python3-dnf xorriso genisoimage isomd5sum
  syslinux isolinux syslinux-common syslinux-utils grub-efi-amd64-bin grub-pc-bin grub-common mtools
  dosfstools squashfs-tools rsync gnupg qemu-utils qemu-system-x86 ovmf xz-utils zstd bzip2 openssh-server
  openssh-client cpio curl)
# Rocky 9 names. EL9 has no genisoimage of its own (xorriso's xorrisofs replaces mkisofs), and
# so no isoinfo; curl is satisfied by the preinstalled curl-minimal (installing curl conflicts).
DNF_PKGS=(rpm-build rpm-sign createrepo_c dnf-plugins-core xorriso genisoimage isomd5sum findutils mtools dosfstools
  squashfs-tools rsync gnupg2 qemu-img xz zstd bzip2 openssh-server openssh-clients cpio curl grub2-tools-extra)
case "$(uname -m)" in
  # Boot loaders and firmware exist for the host's own arch only.
  x86_64) DNF_PKGS+=(syslinux grub2-efi-x64-modules qemu-kvm edk2-ovmf) ;;
  aarch64) DNF_PKGS+=(grub2-efi-aa64-modules) ;;
esac

if command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif command -v dnf >/dev/null; then
  missing=()
  # --whatprovides: a name another package provides counts (curl by curl-minimal).
  for p in "${DNF_PKGS[@]}"; do rpm -q --whatprovides "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    platform=$(. /etc/os-release && echo "${PLATFORM_ID:-}")
    if [ "$platform" = platform:el9 ] || [ "$platform" = platform:el8 ]; then
      $SUDO dnf install -y -q dnf-plugins-core
      $SUDO dnf config-manager --set-enabled "$([ "$platform" = platform:el9 ] && echo crb || echo powertools)"
    fi
    # A package none of the enabled repos has: try once more with EPEL.
    $SUDO dnf install -y -q "${missing[@]}" || { $SUDO dnf install -y -q epel-release && $SUDO dnf install -y -q "${missing[@]}"; }
  fi
else
  echo "setup: neither apt-get nor dnf found; install: ${APT_PKGS[*]}" >&2
  exit 1
fi

node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);console.log(a>20||(a===20&&b>=19)?1:0)' 2>/dev/null || echo 0)
if [ "$node_ok" != 1 ]; then
  echo "setup: Node.js >= 20.19 is required (found: $(node -v 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when node_modules does not match the lockfile.
stamp=node_modules/.setup-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
echo "setup: ready"
