/* test_viewer_dataset_units: the class-table rules the viewer's export and
 * `alignseg export` share (core/output/dataset.h): ids asked for or the
 * smallest free one, colours from the VOC palette (computed here by its bit
 * rule), names validated, the group -> class rule (named, unnamed = lazy
 * prototype_<g>, background, hidden = not exported or "ignore"), empty groups
 * never becoming classes, and as_dataset_peek reading a folder without
 * changing it. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dataset.h"
#include "merge.h"
#include "testutil.h"

/* VOC palette entry i, from the published bit rule (not from our code). */
static void voc(int i, uint8_t rgb[3])
{
    int r = 0, g = 0, b = 0;
    for (int j = 0; j < 8; j++) {
        r |= ((i >> 0) & 1) << (7 - j);
        g |= ((i >> 1) & 1) << (7 - j);
        b |= ((i >> 2) & 1) << (7 - j);
        i >>= 3;
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

static void test_table(void)
{
    static AsClass tab[AS_DATASET_MAX_CLASS + 1];
    memset(tab, 0, sizeof tab);
    AsError err = { 0 };
    int id = -1;
    uint8_t want[3];
    CHECK(as_class_table_add(tab, "cat", 3, NULL, &id, &err) == 0 && id == 3, "cat: %d %s", id,
          err.msg);
    voc(3, want);
    CHECK(!memcmp(tab[3].rgb, want, 3), "cat's colour is VOC entry 3: %d,%d,%d", tab[3].rgb[0],
          tab[3].rgb[1], tab[3].rgb[2]);
    CHECK(as_class_table_add(tab, "dog", 3, NULL, &id, &err) == 0 && id == 1,
          "id 3 taken: the smallest free id, got %d", id);
    const uint8_t red[3] = { 250, 10, 20 };
    CHECK(as_class_table_add(tab, "cat", 9, red, &id, &err) == 0 && id == 3,
          "an existing class keeps its id: %d", id);
    CHECK(!memcmp(tab[3].rgb, want, 3), "and its colour");
    CHECK(as_class_table_add(tab, "sky", 0, red, &id, &err) == 0 && id == 2 &&
              !memcmp(tab[2].rgb, red, 3),
          "sky: id %d with the colour asked for", id);
    CHECK(as_class_table_add(tab, "background", 5, NULL, &id, &err) == 0 && id == 0 &&
              !tab[5].name[0],
          "background is 0 and adds nothing");
    CHECK(as_class_table_find(tab, "sky") == 2 && as_class_table_find(tab, "cow") == 0 &&
              as_class_table_find(tab, "background") == 0,
          "find");
    static const char *const bad[] = { "", ".hidden", "a/b", "a:b", "a,b", "tab\there",
                                       "0123456789012345678901234567890123456789012345678901234567890123" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        as_error_clear(&err);
        CHECK(as_class_table_add(tab, bad[i], 0, NULL, &id, &err) == AS_ERR_ARG && id == 0 &&
                  strstr(err.msg, "class name"),
              "bad name '%s' refused: %s", bad[i], err.msg);
    }
    int n = 0;
    for (int k = 1; k <= AS_DATASET_MAX_CLASS; k++)
        n += tab[k].name[0] != 0;
    CHECK(n == 3, "3 classes, %d", n);
    /* a full table refuses a new name, still finds the old ones */
    char name[32];
    int st = 0;
    for (int k = 0; k < AS_DATASET_MAX_CLASS && !st; k++) {
        snprintf(name, sizeof name, "c%d", k);
        st = as_class_table_add(tab, name, 0, NULL, &id, &err);
    }
    CHECK(st == AS_ERR_ARG && strstr(err.msg, "254"), "a full table: %s", err.msg);
    CHECK(as_class_table_add(tab, "cat", 0, NULL, &id, &err) == 0 && id == 3, "cat still 3");
}

static void test_groups(void)
{
    char dir[512];
    CHECK(test_tmpdir_make(dir, sizeof dir, "dsunits") != NULL, "tmpdir");
    AsError err = { 0 };
    AsDataset *d = NULL;
    CHECK(as_dataset_open(dir, NULL, &d, &err) == 0, "open: %s", err.msg);
    if (!d)
        return;
    /* the viewer's table: "cat" has id 7 and a colour of its own */
    static AsClass tab[AS_DATASET_MAX_CLASS + 1];
    memset(tab, 0, sizeof tab);
    const uint8_t orange[3] = { 255, 128, 0 };
    int id;
    as_class_table_add(tab, "cat", 7, orange, &id, &err);
    /* groups: 0 unnamed, 1 cat, 2 background, 3 cat, 4 hidden, 5 unnamed without pixels */
    const char *names[6] = { NULL, "cat", "background", "cat", "sky", "" };
    const bool visible[6] = { true, true, true, true, false, true };
    int gc[6];
    CHECK(as_dataset_map_groups(d, tab, 6, names, visible, false, gc, &err) == 0, "%s", err.msg);
    CHECK(gc[0] == AS_DATASET_PROTOTYPE && gc[1] == 7 && gc[2] == 0 && gc[3] == 7 && gc[4] == 0 &&
              gc[5] == AS_DATASET_PROTOTYPE,
          "map: %d %d %d %d %d %d", gc[0], gc[1], gc[2], gc[3], gc[4], gc[5]);
    size_t n;
    const AsClass *cl = as_dataset_classes(d, &n);
    CHECK(!strcmp(cl[7].name, "cat") && !memcmp(cl[7].rgb, orange, 3),
          "cat takes the table's id and colour");
    CHECK(as_class_table_find(cl, "sky") == 0, "a hidden group's name is not a class");
    int gi[6];
    CHECK(as_dataset_map_groups(d, tab, 6, names, visible, true, gi, &err) == 0, "%s", err.msg);
    int ign = as_class_table_find(cl, "ignore");
    CHECK(ign == AS_DATASET_MAX_CLASS && gi[4] == ign && gi[1] == 7,
          "hidden as ignore, the last id: %d (ignore %d)", gi[4], ign);

    /* one image: groups 0..4 have pixels, group 5 none */
    enum { W = 6, H = 2 };
    const int32_t labels[W * H] = { 0, 0, 1, 1, 2, 3, 4, 4, AS_LABEL_BACKGROUND, 0, 1, 3 };
    CHECK(as_dataset_add(d, "one", "/photos/one.png", labels, W, H, 6, gi, 0, 0, &err) == 0,
          "add: %s", err.msg);
    CHECK(as_dataset_commit(d, &err) == 0, "commit: %s", err.msg);
    as_dataset_free(d);

    AsClass peek[AS_DATASET_MAX_CLASS + 1];
    char **imgs = NULL;
    CHECK(as_dataset_peek(dir, peek, &imgs, &err) == 0, "peek: %s", err.msg);
    CHECK(imgs && imgs[0] && !strcmp(imgs[0], "one") && !imgs[1], "peek lists one image");
    as_dataset_free_names(imgs);
    CHECK(as_class_table_find(peek, "prototype_0") == 1, "unnamed group 0 is prototype_0, id 1");
    CHECK(as_class_table_find(peek, "prototype_5") == 0,
          "a group without pixels is no class");
    CHECK(as_class_table_find(peek, "cat") == 7 && !memcmp(peek[7].rgb, orange, 3),
          "cat kept id 7 and its colour");
    CHECK(as_class_table_find(peek, "ignore") == ign, "ignore");
    char path[700];
    snprintf(path, sizeof path, "%s/masks/one/cat.png", dir);
    CHECK(access(path, F_OK) == 0, "groups 1 and 3 share the mask of cat");
    snprintf(path, sizeof path, "%s/masks/one/background.png", dir);
    CHECK(access(path, F_OK) != 0, "background has no mask");

    /* a second sitting: the table comes back from the folder; a new image gets
     * the next id, a re-added one keeps its id */
    CHECK(as_dataset_open(dir, NULL, &d, &err) == 0, "reopen: %s", err.msg);
    if (!d)
        return;
    const char *names2[2] = { "cat", "dog" };
    int g2[2];
    CHECK(as_dataset_map_groups(d, peek, 2, names2, NULL, false, g2, &err) == 0 && g2[0] == 7,
          "cat is 7 again: %d", g2[0]);
    const int32_t l2[4] = { 0, 0, 1, 1 };
    CHECK(as_dataset_add(d, "two", "/photos/two.png", l2, 2, 2, 2, g2, 0, 0, &err) == 0, "%s",
          err.msg);
    CHECK(as_dataset_add(d, "one", "/photos/one.png", l2, 2, 2, 2, g2, 0, 0, &err) == 0, "%s",
          err.msg);
    CHECK(as_dataset_commit(d, &err) == 0, "%s", err.msg);
    AsDatasetImage im;
    long a = as_dataset_find(d, "one"), b = as_dataset_find(d, "two");
    CHECK(a >= 0 && as_dataset_image(d, (size_t)a, &im) == 0 && im.id == 1, "one keeps id 1");
    CHECK(b >= 0 && as_dataset_image(d, (size_t)b, &im) == 0 && im.id == 2, "two is id 2");
    as_dataset_free(d);
    snprintf(path, sizeof path, "%s/masks/one/prototype_0.png", dir);
    CHECK(access(path, F_OK) != 0, "one's stale mask of prototype_0 is gone");

    /* additions dropped without a commit (a cancelled export) leave nothing,
     * not even the empty folder of their masks */
    CHECK(as_dataset_open(dir, NULL, &d, &err) == 0, "reopen: %s", err.msg);
    if (d) {
        CHECK(as_dataset_add(d, "three", "/photos/three.png", l2, 2, 2, 2, g2, 0, 0, &err) == 0,
              "%s", err.msg);
        as_dataset_free(d);
    }
    snprintf(path, sizeof path, "%s/masks/three", dir);
    CHECK(access(path, F_OK) != 0, "a dropped image leaves no masks folder");
    snprintf(path, sizeof path, "%s/voc/SegmentationClass/three.png", dir);
    CHECK(access(path, F_OK) != 0, "nor a VOC file");
    CHECK(as_dataset_peek(dir, peek, &imgs, &err) == 0 && imgs && imgs[0] && imgs[1] && !imgs[2],
          "still two images");
    as_dataset_free_names(imgs);

    /* peek changes nothing and refuses a damaged index, naming it */
    snprintf(path, sizeof path, "%s/nothing-here", dir);
    imgs = NULL;
    CHECK(as_dataset_peek(path, peek, &imgs, &err) == 0 && !imgs &&
              as_class_table_find(peek, "cat") == 0,
          "no dataset: an empty table");
    CHECK(access(path, F_OK) != 0, "peek created nothing");
    snprintf(path, sizeof path, "%s/" AS_DATASET_INDEX, dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"classes\": [{\"id\": 300, \"name\": \"x\", \"color\": [0,0,0]}], \"images\": []}",
              f);
        fclose(f);
    }
    as_error_clear(&err);
    CHECK(as_dataset_peek(dir, peek, NULL, &err) == AS_ERR_FORMAT &&
              strstr(err.msg, AS_DATASET_INDEX),
          "a bad class id is refused: %s", err.msg);
    test_tmpdir_remove(dir);
}

int main(void)
{
    test_table();
    test_groups();
    printf("%d checks passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
