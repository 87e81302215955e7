// The tag list: delete a tag everywhere (GraphQL removeTagFromList) after a confirmation.

import { gql } from "./graphql.js";

const msg = document.getElementById("cc-tag-msg");

for (const button of document.querySelectorAll(".cc-tag-delete")) {
  button.addEventListener("click", async () => {
    const item = button.closest(".cc-tag-item");
    const name = item.querySelector("a").firstChild.textContent.trim();
    if (!window.confirm(`Delete the tag "${name}" from every job?`)) return;
    try {
      await gql("mutation($ids: [ID!]!) { removeTagFromList(tagIds: $ids) }", { ids: [button.dataset.tag] });
      const group = item.closest(".cc-tag-group");
      item.remove();
      if (!group.querySelector(".cc-tag-item")) group.remove();
    } catch (e) {
      msg.textContent = `could not delete the tag: ${e.message}`;
      msg.classList.remove("d-none");
    }
  });
}
