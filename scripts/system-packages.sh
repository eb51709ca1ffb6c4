# Sourced by scripts/test: the Debian/Ubuntu packages the runtimes and the sandbox use.
# php8.2-cli and php8.2-fpm run PHP functions and apps; bubblewrap builds the Linux sandbox.
LAMINA_APT_PACKAGES="php8.2-cli php8.2-fpm bubblewrap"
missing=""
for package in $LAMINA_APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null; then
        echo "installing$missing (apt)" >&2
        SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    else
        echo "warning: could not install$missing (no apt-get); their tests will fail" >&2
    fi
fi
