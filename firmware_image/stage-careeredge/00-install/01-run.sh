#!/bin/bash -e
# pi-gen: unpack the offline device bundle into the image and run its installer inside the image's
# chroot (system user, /opt/careeredge venv from the bundled wheels, units enabled; no network).
# Put the bundle in files/ first: careeredge-cloud build-device-bundle --out firmware_image/stage-careeredge/00-install/files
shopt -s nullglob
bundles=(files/careeredge-device-*-aarch64.tar.gz)
if [ "${#bundles[@]}" -ne 1 ]; then
    echo "stage-careeredge: expected exactly one files/careeredge-device-*-aarch64.tar.gz, found ${#bundles[@]}" >&2
    exit 1
fi
install -d "${ROOTFS_DIR}/opt/careeredge-bundle"
tar -xzf "${bundles[0]}" -C "${ROOTFS_DIR}/opt/careeredge-bundle" --strip-components=1
on_chroot <<'CHROOT'
/opt/careeredge-bundle/install.sh
CHROOT
# The first-boot example beside where the owner will put the real file.
install -m 0644 "${ROOTFS_DIR}/opt/careeredge-bundle/config/careeredge.toml.example" \
    "${ROOTFS_DIR}/boot/firmware/careeredge.toml.example"
rm -rf "${ROOTFS_DIR}/opt/careeredge-bundle/wheels"
